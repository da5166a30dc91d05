"""The embedded default run: what `evo run` does with no config file.

CartPole-v1 balanced by a 4-16-2 network whose weights CMA-ES evolves, with
fitness evaluated on a loopback-only local Ray instance (2 workers). It
finishes in well under a minute on a laptop.
"""

DEFAULT_CONFIG_TOML = """
name = "default-cartpole"
seed = 0
generations = 60
target_fitness = 500.0

[network]
hidden = [16]
activation = "tanh"

[task]
type = "control"
env_id = "CartPole-v1"
episodes = 5

[strategy]
type = "cmaes"
population = 32
sigma = 0.5

[evaluator]
type = "ray"
workers = 2
"""
