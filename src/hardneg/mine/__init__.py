"""Hard-negative mining from BEIR-style data (corpus, queries, qrels) into Tevatron training rows."""

from hardneg.mine.config import MineConfig, MineReport, parse_range
from hardneg.mine.miner import mine_beir, mine_instances

__all__ = ["MineConfig", "MineReport", "mine_beir", "mine_instances", "parse_range"]
