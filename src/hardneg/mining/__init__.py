"""Hard-negative mining from BEIR-style data (corpus, queries, qrels) into training instances.

The stage's verb is `hardneg.mine(beir, split="train", negatives=30, ...)` (`hardneg.mining.miner.mine`).
"""

from hardneg.mining.config import MineConfig, MineReport, mine_config, parse_range
from hardneg.mining.miner import mine, mine_beir, mine_instances

__all__ = ["MineConfig", "MineReport", "mine", "mine_beir", "mine_config", "mine_instances", "parse_range"]
