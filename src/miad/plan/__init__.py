"""`miad plan`: what a run of the pipeline costs (tasks, CPU/GPU hours, memory, storage), per DVC stage, from the
unit costs `make bench` measured (costs.yaml) and the params of the chosen profile."""

from miad.plan.estimate import Estimate, estimate_pipeline, load_costs

__all__ = ["Estimate", "estimate_pipeline", "load_costs"]
