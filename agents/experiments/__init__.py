"""The papers' experiments run with trained agents: evaluate, compare, PPO baselines, leave-one-out, probes, rules."""
