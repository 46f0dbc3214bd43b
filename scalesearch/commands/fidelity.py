"""``scalesearch fidelity RUN_DIR``: retrain a finished study's best specs longer, to check its proxy."""

from __future__ import annotations

import argparse
import sys


HELP = "retrain a study's K best specs at F times its budget (RUN_DIR/fidelity.json)"
DESCRIPTION = ("Retrain the K best distinct specs of a finished run at F times the study's training budget, with its "
               "dataset and recipe, and record each in RUN_DIR/fidelity.json as soon as it is done (a rerun resumes). "
               "`scalesearch report` then states Kendall tau between proxy and long-budget mAP.")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("fidelity", help=HELP, description=DESCRIPTION)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by `scalesearch run`")
    parser.add_argument("--top-k", type=int, default=None, metavar="K", help="distinct specs to retrain (default 3)")
    parser.add_argument("--factor", type=float, default=None, metavar="F",
                        help="long budget = F x the study's steps (or seconds) (default 4)")
    parser.add_argument("--seeds", type=int, default=None, metavar="S",
                        help="paired seeds per spec: the study's seed and the next S-1, the same for every spec "
                             "(default 1; 3 with --longer)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="train N specs at once in separate processes, cores divided (default 1)")
    parser.add_argument("--include", action="append", default=[], metavar="LABEL",
                        help="also retrain the trial labelled LABEL (an enqueued baseline, e.g. EfficientDet-Lite0); "
                             "repeatable")
    parser.add_argument("--against", metavar="LABEL",
                        help="retrain the trial labelled LABEL and the K best points cheaper than it on every cost "
                             "objective (the only ones that could dominate it); `scalesearch report` then tests them "
                             "against it")
    parser.add_argument("--per-rung", action="store_true",
                        help="retrain the K best points of each FLOPs budget rung (labelled trials apart), e.g. "
                             "with --include 'paper rule' to compare a searched scaling rule with the paper's")
    parser.add_argument("--longer", type=float, metavar="F2",
                        help="does the verdict last? retrain the labelled baseline of RUN_DIR/fidelity.json and its "
                             "most accurate other point at F2 x the study's budget (more than fidelity.json's) into "
                             "RUN_DIR/fidelity_x<F2>.json; `scalesearch report` then gives the verdict at both "
                             "budgets with learning curves (--top-k, --factor and the picking options do not apply)")
    parser.add_argument("--frozen-backbone", dest="frozen", action="store_true",
                        help="retrain with the pretrained backbone frozen (its features computed once per resolution "
                             "and cached under RUN_DIR/estimator/features; each step 3-5x cheaper) into "
                             "RUN_DIR/fidelity_frozen.json. Alone: would a frozen backbone do better? the points of "
                             "RUN_DIR/fidelity.json on its seeds and budget, each seed paired with its fine-tuned "
                             "training (--seeds: the first S of them, default all). With --against LABEL (and --top-k, "
                             "--factor, --seeds, latency options): the retraining itself, the cheap path from search to "
                             "verdict; `scalesearch report` does not read it, benchmarks/beat_lite0.py "
                             "--frozen-backbone does. --save keeps each model whole (pretrained backbone + trained "
                             "parts) in RUN_DIR/fidelity_frozen_checkpoints/ for `scalesearch export`")
    parser.add_argument("--trial", dest="trials", action="append", type=int, default=[], metavar="N",
                        help="with --frozen-backbone: only trial N of fidelity.json (repeatable; default every point)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--device", metavar="D",
                        help="train on D (cpu, cuda[:N], auto) instead of the study's train.device; points compare "
                             "at the same step budget whatever the device")
    parser.add_argument("--reuse", metavar="OTHER_RUN",
                        help="copy the seeds that OTHER_RUN/fidelity.json holds for picked points (same spec, "
                             "budget, data and recipe: e.g. the baseline retrained for another search of the same "
                             "space) instead of training them again; each copied seed's history says where it came "
                             "from. With --frozen-backbone --against: OTHER_RUN/fidelity_frozen.json's seeds")
    parser.add_argument("--save", action="store_true",
                        help="keep every retrained model as RUN_DIR/fidelity_checkpoints/trial<N>_seed<S>.pt "
                             "(fidelity_frozen_checkpoints/ with --frozen-backbone; for `scalesearch export`); a point "
                             "with every seed recorded and no checkpoint here (they are not committed) has its first "
                             "seed trained again for one (its mAP logged beside the recorded one)")
    parser.add_argument("--no-latency", dest="latency", action="store_false", default=None,
                        help="skip measuring each retrained point's latency afterwards (measured by default when "
                             "the study measures latency)")
    parser.add_argument("--remeasure-latency", dest="remeasure", action="store_true",
                        help="measure every retrained point's latency again (interleaved rounds), replacing the stored")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scalesearch.errors import UserError
    from scalesearch.fidelity import FROZEN_FILE, bootstrap_interval, kendall, longer_file, spearman, top1_regret
    from scalesearch.machine import portable_command, resolve_device
    from scalesearch.retrain.fidelity import retrain, retrain_frozen, retrain_longer

    if args.workers < 1:
        raise UserError(f"--workers: must be >= 1, but got {args.workers}")
    command = portable_command(["scalesearch", *sys.argv[1:]])
    device = None if args.device is None else resolve_device(args.device)
    if args.trials and not args.frozen:
        raise UserError("--trial: applies to --frozen-backbone only (the other modes pick their points)")
    if args.frozen:
        for flag, given in (("--longer", args.longer is not None),
                            ("--include", bool(args.include)), ("--per-rung", args.per_rung),
                            ("--workers", args.workers != 1)):
            if given:
                raise UserError(f"{flag}: does not apply with --frozen-backbone")
        if args.against is None:
            for flag, given in (("--top-k", args.top_k is not None), ("--factor", args.factor is not None),
                                ("--no-latency", args.latency is False), ("--remeasure-latency", args.remeasure),
                                ("--reuse", args.reuse is not None)):
                if given:
                    raise UserError(f"{flag}: applies to --frozen-backbone with --against only (alone it retrains "
                                    f"fidelity.json's points at its budget)")
        rows = retrain_frozen(args.run_dir, args.trials, args.seeds, log=print, command=command, device=device,
                              progress=not args.quiet, save=args.save, against=args.against,
                              top_k=3 if args.top_k is None else args.top_k,
                              factor=4.0 if args.factor is None else args.factor, latency=args.latency,
                              remeasure=args.remeasure, reuse=args.reuse)
        print(f"wrote {args.run_dir}/{FROZEN_FILE} ({len(rows)} specs)")
        return 0
    if args.longer is not None:
        if args.reuse is not None:
            raise UserError("--reuse: applies to the picks of fidelity.json, not to --longer")
        for flag, given in (("--top-k", args.top_k is not None), ("--factor", args.factor is not None),
                            ("--against", args.against is not None), ("--include", bool(args.include)),
                            ("--per-rung", args.per_rung)):
            if given:
                raise UserError(f"{flag}: does not apply with --longer (it retrains fidelity.json's baseline and its "
                                f"most accurate other point at F2 x)")
        rows = retrain_longer(args.run_dir, args.longer, 3 if args.seeds is None else args.seeds, log=print,
                              workers=args.workers, save=args.save, command=command, device=device,
                              progress=not args.quiet)
        print(f"wrote {args.run_dir}/{longer_file(args.longer)} ({len(rows)} specs)")
        return 0
    rows = retrain(args.run_dir, 3 if args.top_k is None else args.top_k, 4.0 if args.factor is None else args.factor,
                   1 if args.seeds is None else args.seeds, log=print,
                   workers=args.workers, include=args.include, against=args.against, save=args.save,
                   per_rung=args.per_rung, remeasure=args.remeasure, latency=args.latency, command=command,
                   device=device, reuse=args.reuse, progress=not args.quiet)
    if len(rows) >= 2:
        tau, p = kendall(rows)
        low, high = bootstrap_interval(rows)
        print(f"Kendall tau (proxy vs long-budget mAP) = {tau:.3f} [95% bootstrap {low:.3f}, {high:.3f}], "
              f"p = {p:.3g}, n = {len(rows)}; Spearman rho = {spearman(rows)[0]:.3f}; "
              f"top-1 regret {top1_regret(rows):.4f} mAP")
    print(f"wrote {args.run_dir}/fidelity.json ({len(rows)} specs)")
    return 0
