"""The compiled machinery (numba): every kernel that makes an operation fast lives under this package, so that
`convlens.nn.functional` reads as the course's math."""
