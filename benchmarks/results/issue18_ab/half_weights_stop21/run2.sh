#!/bin/bash
# The rest of run.sh (its service loop passed the setting through the environment, which the
# benchmark strips): waits for the inference run in flight, then the same steps.
set -x
cd .
O=final
PY=.venv/bin/python
D=../shared/data
while pgrep -f "benchmarks.inference" > /dev/null; do sleep 2; done
$PY -m benchmarks.inference --artifact ATIS --sentiment AIRLINE --engines numpy --kernels native --recurrent float32 float16 --anchor-crfsuite atis_crfsuite.model --sentiment-split $D/airline_sentiment/valid.tsv --data-dir $D --out $O/inference_3.json > $O/inference_3.log 2>&1
$PY -m benchmarks.inference --artifact SNIPS --split $D/snips/valid --engines numpy --kernels native --recurrent float32 float16 --data-dir $D --out $O/inference_snips.json > $O/inference_snips.log 2>&1
$PY -m benchmarks.profile_parse --tagger ATIS --sentiment AIRLINE --engine numpy --kernels native --recurrent float16 --data-dir $D --out $O/profile_float16.json > $O/profile_float16.log 2>&1
$PY -m benchmarks.profile_parse --tagger ATIS --sentiment AIRLINE --engine numpy --kernels native --recurrent float32 --data-dir $D --out $O/profile_float32.json > $O/profile_float32.log 2>&1
for i in 1 2 3; do
  for w in float16 float32; do
    $PY -m benchmarks.service --recurrent-weights $w --tagger-artifact ATIS --sentiment-artifact AIRLINE --systems slotfill --workers 2 --concurrency 1 32 --requests 3000 --data-dir $D --out $O/service_${w}_$i.json > $O/service_${w}_$i.log 2>&1
  done
done
echo finished > $O/DONE
