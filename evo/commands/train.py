"""`evo train`: the baseline the config's task names (backprop, an ESN's recipe, or REINFORCE for a control task)."""

from __future__ import annotations

import argparse
from typing import Any

from evo.commands.common import Output, add_run_dir_options, config_int
from evo.config import RunConfig, load_config, parse_config


def add_parser(sub: Any) -> None:
    """The `evo train` options."""
    train = sub.add_parser(
        "train",
        help="train the config's network by gradient descent on the same task and split (control tasks: REINFORCE)",
        description=(
            "Gradient-descent baseline: the config's network, data split and starting weights, trained with the "
            "[train] section's settings (optimizer, lr, batch_size, epochs, weight_decay, dropout, patience, clip_norm). "
            "Control tasks train by policy gradient (REINFORCE; [train] iterations, episodes_per_update, gamma, "
            "entropy_bonus) and are tested on the same fresh episodes as evolution. "
            "Writes a run directory like `evo run` (metrics per epoch or update, model.json/.npz, summary.json with test figures)."
        ),
    )
    train.add_argument(
        "config", help="path to a run config (.toml) with a labelled task (xor, parity, digits, dataset), a time series or a control task"
    )
    train.add_argument("--seed", type=config_int("seed"), help="seed for the starting weights and minibatch order")
    train.add_argument("--epochs", type=config_int("train.epochs"), help="maximum number of epochs (early stopping may end sooner)")
    train.add_argument("--iterations", type=config_int("train.iterations"), help="control tasks: policy-gradient updates")
    train.add_argument("--init-from", metavar="RUN_DIR", help="start from RUN_DIR's best genome (fine-tune an evolved network)")
    add_run_dir_options(train, "the run's summary.json")


def with_epochs(config: RunConfig, epochs: int | None, iterations: int | None = None) -> RunConfig:
    """The config with ``train.epochs`` and ``train.iterations`` replaced (None: as they are)."""
    if epochs is None and iterations is None:
        return config
    data = config.to_dict()
    for key, value in (("epochs", epochs), ("iterations", iterations)):
        if value is not None:
            data.setdefault("train", {})[key] = value
    return parse_config(data)


def run(args: argparse.Namespace, out: Output) -> int:
    """Train and print the figures (a training run cannot be resumed: Ctrl-C just stops it)."""
    from evo.baselines import baseline_for, make_training_run

    config = with_epochs(load_config(args.config, seed=args.seed, out=args.out), args.epochs, args.iterations)
    training = make_training_run(config, progress=not args.no_progress, init_from=args.init_from)
    try:
        result = training.run()
    except KeyboardInterrupt:
        where = f" (its directory {training.run_dir} holds what was written)" if getattr(training, "run_dir", None) else ""
        out.say(f"interrupted: training stopped{where}; a training run cannot be resumed, run `evo train` again")
        return 130
    s = result.summary
    out.say(f"run directory: {result.run_dir}")
    for line in baseline_for(training.task).summary_lines(s):
        out.say(line)
    out.result(s)
    return 0
