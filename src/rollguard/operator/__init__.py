"""rollguard as a Kubernetes controller: ``RollbackPolicy`` resources, sharded replicas.

Policies are custom resources (:mod:`~rollguard.operator.crd`, whose schema is
generated from the policy model by :mod:`~rollguard.operator.schema`); replicas
share them through ``coordination.k8s.io`` Leases (:mod:`~rollguard.operator.shards`)
and fence every action against them (:mod:`~rollguard.operator.fence`); each
analysis is the watch loop every other command uses
(:func:`rollguard.controller.assemble.assemble`).
"""
