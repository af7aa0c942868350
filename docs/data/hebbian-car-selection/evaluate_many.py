"""The script that made this folder's CSVs: per-episode returns of policy files on Default car tracks.

    python docs/data/hebbian-car-selection/evaluate_many.py OUT.csv FIRST_SEED EPISODES FILE.pt [FILE.pt ...]

Each file plays tracks FIRST_SEED ... FIRST_SEED + EPISODES - 1 in calls of 10 tracks to
``agents.experiments.evaluate.evaluate_policy_on`` (what ``hebb-gym evaluate`` runs: full 1000-step
episodes, no early stop), two processes at a time; rows ``file,seed,return,length`` are appended, and a
rerun skips the calls already in OUT.csv. A call of 10 tracks draws the Hebbian weights' random starts
for 10 episodes at a time, so ``hebb-gym evaluate --episodes 300`` gives returns of the same distribution
but not the same numbers.
"""
import csv
import os
import sys
import time
from multiprocessing import Pool

os.environ.setdefault("MUJOCO_GL", "egl")
CHUNK = 10


def one(job):
    path, seed, n = job
    from agents.experiments.evaluate import evaluate_policy_on
    from agents.policies import load_policy
    t = time.time()
    s = evaluate_policy_on(load_policy(path), "HebbCarRacing-Default-v0", n, seed, max_steps=1000)
    return path, seed, s.returns.tolist(), s.lengths.tolist(), time.time() - t


def main(out, first, episodes, files):
    done = set()
    if os.path.exists(out):
        with open(out) as fh:
            done = {(r["file"], int(r["seed"])) for r in csv.DictReader(fh)}
    jobs = [(f, first + k, min(CHUNK, episodes - k)) for f in files for k in range(0, episodes, CHUNK)
            if (os.path.basename(f), first + k) not in done]
    new = not os.path.exists(out)
    with open(out, "a", newline="") as fh, Pool(2) as pool:
        w = csv.writer(fh)
        if new:
            w.writerow(["file", "seed", "return", "length"])
        for path, s0, rets, lens, dt in pool.imap_unordered(one, jobs):
            w.writerows([os.path.basename(path), s0 + i, r, n] for i, (r, n) in enumerate(zip(rets, lens)))
            fh.flush()
            print(f"{os.path.basename(path)} tracks {s0}-{s0 + len(rets) - 1}: mean {sum(rets) / len(rets):.1f} ({dt:.1f} s)")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])
