"""The command line's `export` and `predict`: a model out of the store, and that model on a
clip of the user's own."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mer_bench.benchmark.cli.options import add_recipe_option, config_of, positive_int


def add_parsers(commands, common: argparse.ArgumentParser) -> dict:
    export = commands.add_parser(
        "export", parents=[common],
        help="write a model to a folder (safetensors weights, config.json, MODEL_CARD.md): a "
             "stored fold's kept weights (--fold), or one trained here on every subject")
    export.add_argument("folder", type=Path, help="the folder to write (new or empty; an "
                                                  "export mer-bench wrote there, unchanged, "
                                                  "is replaced; anything else is refused)")
    export.add_argument("--method", required=True,
                        help="with --fold: the stored run's label (as tables name it); else "
                             "the method (registry name) to train on every subject")
    export.add_argument("--task", default=None, help="the task (default: the synthetic default)")
    export.add_argument("--fold", help="the held-out subject of a stored job that kept its "
                                       "weights (run --keep weights), e.g. synthetic/sub03")
    export.add_argument("--seed", type=int, default=None,
                        help="the seed (default: a fold's only one; training: 0)")
    export.add_argument("--budget", type=positive_int, help="training iterations (default: the "
                                                   "method's); the LOSO run quoted must match")
    add_recipe_option(export, "the model trained on every subject; the LOSO run quoted must "
                              "match")
    export.add_argument("--pretrain", metavar="TASK", help="start from a checkpoint of TASK")
    export.add_argument("--pretrain-budget", type=positive_int, help="its pretraining iterations")
    predict = commands.add_parser(
        "predict", parents=[common],
        help="an exported model on a folder of frames or a video: the probabilities of every "
             "head, and a PNG of what the model saw")
    predict.add_argument("clip", type=Path, help="a folder of numbered frames (img1.jpg ...) "
                                                 "or a video file (frames numbered from 0)")
    predict.add_argument("--weights", required=True, type=Path, metavar="DIR",
                         help="an exported model's folder (mer-bench export)")
    predict.add_argument("--onset", type=int, help="onset frame (default: the first)")
    predict.add_argument("--apex", help="apex frame number, or auto: the frame whose face moved "
                                        "most from both onset and offset (TV-L1 flow)")
    predict.add_argument("--offset", type=int, help="offset frame (default: the last)")
    predict.add_argument("--out", type=Path, help="the PNG to write (default: RESULTS/"
                                                  "predictions/<clip>.png; its JSON beside it)")
    return {"export": command_export, "predict": command_predict}


def command_export(args: argparse.Namespace) -> int:
    from mer_bench.benchmark.reporting.exporting import export_every_subject, export_fold, stored_fold
    from mer_bench.benchmark.protocol.grids import Grid, MethodSpec
    from mer_bench.benchmark.storage.model_files import EXPORT
    from mer_bench.benchmark.storage.owned_outputs import check_replaceable_folder
    from mer_bench.datasets.tasks import DEFAULT_TASK

    config = config_of(args)
    task = args.task or DEFAULT_TASK
    check_replaceable_folder(args.folder, EXPORT)  # before training or reading anything
    if args.fold:
        if args.recipe or args.budget or args.pretrain:
            raise ValueError("--fold exports a stored job: its run label (--method) names its "
                             "budget and recipe; --budget, --recipe and --pretrain are for "
                             "training on every subject")
        record = stored_fold(config, args.method, task, args.fold, args.seed)
        folder = export_fold(config, record, args.folder)
    else:
        spec = MethodSpec.make(args.method, budget=args.budget, pretrain=args.pretrain,
                               pretrain_budget=args.pretrain_budget,
                               recipes={task: dict(args.recipe)} if args.recipe else None)
        grid = Grid((spec,), (task,), (args.seed or 0,), "last")
        folder = export_every_subject(config, grid, args.folder)
    expected = json.loads((folder / "config.json").read_text())["expected"]
    quoted = (f"expected UF1 {expected['scores']['uf1']['mean']:.2f}% from its LOSO run"
              if expected else "no complete LOSO run of it stored to quote")
    print(f"exported {folder} ({quoted}); its card: {folder / 'MODEL_CARD.md'}")
    return 0


def command_predict(args: argparse.Namespace) -> int:
    from mer_bench.benchmark.reporting.figures import prediction_figure, save
    from mer_bench.benchmark.storage.model_files import read_export
    from mer_bench.benchmark.storage.owned_outputs import WRITER, check_replaceable_file, write_file
    from mer_bench.benchmark.tools.prediction import predict_source, what_it_saw

    config = config_of(args)
    exported = read_export(args.weights)
    if args.out:  # a path the user named: only the harness's own picture and JSON replaced
        for path in (args.out, args.out.with_suffix(".json")):
            check_replaceable_file(path, "prediction")
    apex = args.apex if args.apex in (None, "auto") else _frame_number(args.apex)
    prediction = predict_source(exported, args.clip, args.onset, apex, args.offset)
    out = args.out or Path(config.results) / "predictions" / f"{args.clip.stem}.png"
    data = exported.config["source"]["data"]
    rule = "auto" if args.apex == "auto" else "given"
    title = (f"{exported.config['run']} ({exported.config['task']}, trained on "
             f"{'SYNTHETIC data' if data == 'synthetic' else data})\non {args.clip.name}, "
             f"apex frame {prediction.clip.apex} ({rule}): predicted {prediction.predicted()}")
    save(prediction_figure(title, what_it_saw(exported, prediction), exported.classes,
                           prediction.probabilities), out, guard=args.out is not None)
    written = {"written_by": f"{WRITER} predict", **prediction.as_json()}
    write_file(out.with_suffix(".json"), "prediction", lambda temp: temp.write_text(
        json.dumps(written, indent=2) + "\n"), guard=args.out is not None)
    width = max(map(len, exported.classes))
    print(f"{args.clip}: apex frame {prediction.clip.apex} ({prediction.apex_rule})")
    print(f"{'class':<{width}}  " + "  ".join(f"{h:>8}" for h in prediction.probabilities))
    for index, name in enumerate(exported.classes):
        print(f"{name:<{width}}  " + "  ".join(f"{v[index]:8.4f}"
                                               for v in prediction.probabilities.values()))
    print(f"predicted: {prediction.predicted()}; picture {out}, probabilities "
          f"{out.with_suffix('.json')}")
    return 0


def _frame_number(text: str) -> int:
    if not text.lstrip("-").isdigit():
        raise ValueError(f"--apex takes a frame number or auto, got {text!r}")
    return int(text)
