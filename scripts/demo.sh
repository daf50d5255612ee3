#!/usr/bin/env bash
# `make demo`: clean a real training file offline with the default local cascade.
# Real data (../shared/data/rlhn-sample: 25 FiQA training instances) when it is there, else the sample that ships
# with hardneg. Prints where the cleaned file, the summary and the report are.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
HN="$VENV/bin/hardneg"
OUT=${DEMO_OUT:-demo-out}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$OUT"

REAL=../shared/data/rlhn-sample/fiqa.stage_1.gpt-4o-mini.jsonl.gz
if [ -f "$REAL" ]; then
  IN=$REAL
  echo "== input: $IN (25 real FiQA training instances, 15 mined negatives each)"
else
  IN=$("$VENV/bin/python" -c 'from hardneg.data.sample import sample_train_path; print(sample_train_path())')
  echo "== input: $IN (the sample shipped with hardneg; ../shared is absent)"
fi

echo "== hardneg stats"
"$HN" stats "$IN"

echo "== hardneg clean (MiniLM on every negative, cut calibrated on people; rlhn)"
"$HN" clean "$IN" -o "$OUT/cleaned.jsonl.gz" --store "$OUT/judgments.sqlite" --json > "$OUT/summary.json"
"$VENV/bin/python" - "$OUT/summary.json" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
print(json.dumps(summary, indent=2)[:4000])
PY

echo "== the same scores at the recall-first cut (--treatment remove: no new call)"
"$HN" --quiet clean "$IN" -o "$OUT/cleaned.remove.jsonl.gz" --store "$OUT/judgments.sqlite" --treatment remove \
  --json > "$OUT/summary.remove.json"
"$VENV/bin/python" - "$OUT/summary.json" "$OUT/summary.remove.json" <<'PY'
import json, sys
for path in sys.argv[1:]:
    s = json.load(open(path))
    cut, total = s["cut"], s["relabel"]["total"]
    print(f"  {s['relabel']['options']['treatment']} ({cut['operating_point']}, cos >= {cut['t_better']}): "
          f"{total['flagged_instances']} of {s['judging']['instances']} instances flagged, "
          f"{s['judging']['stages'][-1]['judged_now']} judge calls")
    print(f"    {total['negatives_moved']} negatives relabelled, {total['negatives_removed']} removed, "
          f"{total['dropped_total']} instances dropped")
PY

echo "== what this costs per 1,000 instances"
"$VENV/bin/hardneg" --quiet estimate "$IN" --config paper-api --json > "$OUT/estimate.json"
"$VENV/bin/python" - "$OUT/summary.json" "$OUT/judgments.sqlite" "$OUT/estimate.json" <<'PY'
import json, sys
from hardneg.judging.store import JudgmentStore

summary, store, api = json.load(open(sys.argv[1])), sys.argv[2], json.load(open(sys.argv[3]))
n = summary["judging"]["instances"]
total = 0.0
with JudgmentStore(store, readonly=True) as db:
    for stage in summary["judging"]["stages"]:
        seconds = sum(j.latency_s for j in db.iter_judgments(stage=stage["stage"], config_hash=stage["config_hash"]))
        total += seconds
        print(f"  stage {stage['stage']} {stage['name']:14} {1000 * seconds / n / 60:8.1f} min of this machine")
print(f"  local cascade: {1000 * total / n / 3600:.2f} h on this machine per 1,000 instances, no API spend")
print(f"  (judge wall time of this run's {n} instances, model load included: a busy machine measures more)")
print(
    f"  the paper's API cascade (GPT-4o-mini -> GPT-4o, `hardneg estimate`, list prices {api['prices_date']}): "
    f"${1000 * api['cost_usd'] / api['instances']:.2f} per 1,000 instances (at most "
    f"${1000 * api['cost_upper_usd'] / api['instances']:.2f})"
)
PY

if [ -f "$REAL" ]; then
  echo "== the same 25 instances as judged by GPT-4o-mini then GPT-4o (the paper's cascade), and our agreement with it"
  rm -f "$OUT/gpt4o.sqlite"
  "$HN" --quiet import-judgments "$REAL" --stage 1 --judge gpt-4o-mini --store "$OUT/gpt4o.sqlite"
  "$HN" --quiet import-judgments ../shared/data/rlhn-sample/fiqa.stage_2.gpt-4o.jsonl.gz --stage 2 --judge gpt-4o \
    --store "$OUT/gpt4o.sqlite"
  "$HN" agreement --store "$OUT/judgments.sqlite" --a final --b "final:$OUT/gpt4o.sqlite"
fi

echo "== hardneg report"
"$HN" --quiet report --store "$OUT/judgments.sqlite" --instances "$IN" -o "$OUT/report.html"

echo
echo "cleaned training file: $OUT/cleaned.jsonl.gz"
echo "summary (JSON):        $OUT/summary.json"
echo "judgment store:        $OUT/judgments.sqlite   (re-running resumes from it)"
echo "report (open in a browser): $OUT/report.html"
