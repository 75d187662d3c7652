"""Running the user's own programs: bounded in time, supervised, one per deployment at a time.

Shared by the command executor, the promotion hooks and the command metrics
provider, so each runs a program the same way (its process group killed at
the timeout, its pipes read to their end, nothing left behind by a crash).
"""
