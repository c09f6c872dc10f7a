"""Public ops. Each dispatches on the input kind (numpy / torch CPU -> C++ CPU kernel; torch CUDA / CuPy ->
CUDA kernel) and falls back to its plain reference, with one warning, when the compiled core is missing.
"""
