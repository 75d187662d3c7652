"""Fixtures for the executor tests on the real Kubernetes control plane: the cluster, its
namespaces and the router CRDs (``router_crds``) are suite-wide, in tests/conftest.py."""
