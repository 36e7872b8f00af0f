"""Train ScanBridge's small MCC model on generated objects (or continue from earlier weights).

    python tools/train_mcc.py --out resources/mcc/mcc-small.pt --minutes 19 --steps 4000
    python tools/train_mcc.py --init resources/mcc/mcc-small.pt --out more.pt --minutes 60

Everything runs on this machine (CPU, or CUDA with --device cuda); nothing is downloaded. The
written file records this command, the steps and seconds it ran and the loss history, and
``--eval N`` adds the mean occupancy IoU and F-score on N held-out generated objects.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    import torch

    from recon.mcc.model import MCC
    from recon.mcc.train import TrainingView, TrainSettings, generated_view, small_config, train
    from recon.mcc.weights import load_model, save_model

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="weights file to write")
    p.add_argument("--init", type=Path, default=None, help="start from these weights (continue training)")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--minutes", type=float, default=None, help="stop after this long (the file says so)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--queries", type=int, default=512)
    p.add_argument("--pool", type=int, default=128)
    p.add_argument("--refresh-every", type=int, default=2, help="steps between new pooled views")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--eval", type=int, default=0, metavar="N", help="held-out generated objects to score")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    if args.init is not None:
        model = load_model(args.init).model
    else:
        model = MCC(small_config())

    def make_view(rng: np.random.Generator) -> TrainingView:
        return generated_view(rng, model.config)

    settings = TrainSettings(steps=args.steps, batch=args.batch, queries=args.queries, lr=args.lr,
                             pool=args.pool, refresh_every=args.refresh_every, seed=args.seed,
                             device=args.device, log_every=args.log_every,
                             max_seconds=None if args.minutes is None else args.minutes * 60)
    result = train(model, settings, make_view, log=lambda line: print(line, flush=True))
    about = {
        "command": "python tools/train_mcc.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "steps_done": result.steps_done, "steps_planned": args.steps,
        "stopped_by_time": result.stopped_by_time, "train_seconds": round(result.seconds, 1),
        "threads": args.threads, "device": args.device,
        "data": "generated primitives (recon.mcc.data)", "init": str(args.init) if args.init else None,
        "history": result.history[-20:],
    }
    if args.eval:
        from recon.mcc.evaluate import evaluate_generated

        about["eval"] = evaluate_generated(model.cpu(), args.eval, seed=10_000 + args.seed)
    save_model(model.cpu(), args.out, about)
    print(json.dumps({k: v for k, v in about.items() if k != "history"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
