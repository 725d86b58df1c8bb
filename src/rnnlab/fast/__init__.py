"""Fast paths: the same maths as the reference loop, computed by fused kernels."""
