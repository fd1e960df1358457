"""`miad plan`: what a run of the pipeline costs (tasks, CPU/GPU hours, memory, storage), per DVC stage, from the
unit costs `make bench` measured (costs.yaml) and the params of the chosen profile."""
