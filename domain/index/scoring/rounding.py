"""Unit roundoff of float32 and float64: the constants every rigorous error bound of
``scoring`` (the compiled ``scan_terms`` and the NumPy ``_Bound``) is built from."""

U32 = 2.0**-24
U64 = 2.0**-53
