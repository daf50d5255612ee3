"""Hard-negative mining from BEIR-style data (corpus, queries, qrels) into training instances.

Calling the package runs `mine` (`hardneg.mine(beir, split="train", negatives=30, ...)`).
"""

from hardneg.mine.config import MineConfig, MineReport, mine_config, parse_range
from hardneg.mine.miner import mine, mine_beir, mine_instances
from hardneg.stagemodule import make_callable

__all__ = ["MineConfig", "MineReport", "mine", "mine_beir", "mine_config", "mine_instances", "parse_range"]

make_callable(__name__, mine)
