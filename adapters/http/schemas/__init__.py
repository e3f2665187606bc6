"""Request and response bodies of the REST API, kept apart from the domain entities, one
module per resource (``libraries``, ``indexes``, ``documents``, ``chunks``, ``search``,
``embeddings``, ``by_filter``), the filter language in ``filters`` and what they share in
``common``. Routes import each model from its module.

A field bounded by a configurable limit names it (``bounded_by``): the services enforce the
configured ``Limits`` and the OpenAPI document states them (``adapters.http.limits``).
"""
