"""The real Argo Rollouts and Flagger next to rollguard, on the real control plane."""
