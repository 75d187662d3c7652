"""``python -m bench.peers``: the real Argo Rollouts and Flagger next to rollguard."""

from bench.peers.run import main

main()
