"""An LM-initialised fusion model: a pretrained BERT continued over the joint sequence.

``model.init`` names a BERT-architecture language model (``bert-base-uncased``, MiniLM, ... : a
hub id, a local folder or a packaged name, as ``text.model``). :func:`architecture` reads its
config into the fusion model's settings (width, layers, heads, feed-forward width are the
pretrained model's), and :func:`load_pretrained` copies its embeddings and layers into a
:class:`~vecomp.fusion.model.FusionModel` built with them: BERT's weights map one to one onto
vecomp's post-LN layer (query, key and value stacked into one projection, in that order, each
head's slice where BERT's own reshape puts it). :func:`parameter_groups` gives the pretrained
parts their own learning rate, optionally decayed layer by layer from the top.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import VecompError
from .model import ACTIVATIONS, FusionModel

SUPPORTED = ("bert",)  # model_type values whose weights map onto the fusion layers


class PretrainedModelError(VecompError):
    pass


def _load_config(init: str):
    from transformers import AutoConfig

    from ..weights import from_hub
    from .text import resolve_model

    source = resolve_model(init)
    with from_hub(f"the language model {init!r} (model.init)", source):
        return AutoConfig.from_pretrained(source)


def architecture(init: str) -> dict:
    """The fusion model settings that ``init`` fixes: sizes and the text model's layout."""
    config = _load_config(init)
    if config.model_type not in SUPPORTED or config.hidden_act not in ACTIVATIONS:
        raise PretrainedModelError(
            f"model.init {init!r} is a {config.model_type!r} model with {config.hidden_act!r} "
            f"activations; vecomp continues BERT-architecture models ({', '.join(SUPPORTED)}: "
            "bert-base-uncased, MiniLM, ...), or drop model.init to train the fusion layers "
            "from scratch"
        )
    return {
        "width": config.hidden_size,
        "layers": config.num_hidden_layers,
        "heads": config.num_attention_heads,
        "ffn": config.intermediate_size,
        "text_model": {
            "vocab_size": config.vocab_size,
            "max_positions": config.max_position_embeddings,
            "type_vocab_size": config.type_vocab_size,
            "layer_norm_eps": config.layer_norm_eps,
            "activation": config.hidden_act,
        },
    }


def _bert_weights(init: str) -> dict[str, torch.Tensor]:
    from transformers import AutoModel

    from ..weights import from_hub
    from .text import resolve_model

    source = resolve_model(init)
    with from_hub(f"the language model {init!r} (model.init)", source):
        state = AutoModel.from_pretrained(source).state_dict()
    return {k.removeprefix("bert."): v for k, v in state.items()}


def _mapping(layers: int) -> dict[str, str | tuple[str, ...]]:
    """vecomp parameter -> BERT parameter(s) (several are concatenated along dim 0)."""
    names: dict[str, str | tuple[str, ...]] = {
        "text.word_embeddings.weight": "embeddings.word_embeddings.weight",
        "text.position_embeddings.weight": "embeddings.position_embeddings.weight",
        "text.token_type_embeddings.weight": "embeddings.token_type_embeddings.weight",
        "text.norm.weight": "embeddings.LayerNorm.weight",
        "text.norm.bias": "embeddings.LayerNorm.bias",
    }
    for i in range(layers):
        ours, bert = f"layers.{i}.", f"encoder.layer.{i}."
        for kind in ("weight", "bias"):
            names[f"{ours}attention.qkv.{kind}"] = tuple(
                f"{bert}attention.self.{part}.{kind}" for part in ("query", "key", "value")
            )
            names |= {
                f"{ours}attention.out.{kind}": f"{bert}attention.output.dense.{kind}",
                f"{ours}norm1.{kind}": f"{bert}attention.output.LayerNorm.{kind}",
                f"{ours}feed_forward.0.{kind}": f"{bert}intermediate.dense.{kind}",
                f"{ours}feed_forward.2.{kind}": f"{bert}output.dense.{kind}",
                f"{ours}norm2.{kind}": f"{bert}output.LayerNorm.{kind}",
            }
    return names


def load_pretrained(fusion: FusionModel, init: str) -> None:
    """Copy ``init``'s embeddings and layers into ``fusion`` (built from :func:`architecture`)."""
    weights = _bert_weights(init)
    own = fusion.state_dict()
    with torch.no_grad():
        for ours, theirs in _mapping(fusion.config.layers).items():
            parts = [weights[name] for name in ((theirs,) if isinstance(theirs, str) else theirs)]
            value = torch.cat(parts) if len(parts) > 1 else parts[0]
            if value.shape != own[ours].shape:
                raise PretrainedModelError(
                    f"{init}: {theirs} has shape {list(value.shape)}, the fusion model's {ours} "
                    f"{list(own[ours].shape)}; was the model built from architecture({init!r})?"
                )
            own[ours].copy_(value)


def is_pretrained(name: str) -> bool:
    """Whether a FusionModel parameter comes from the pretrained language model."""
    return name.startswith(("text.", "layers."))


def parameter_groups(model: nn.Module, lr: float, lr_pretrained: float, layer_decay: float):
    """AdamW groups: new parts at ``lr``; the pretrained layer i of L at ``lr_pretrained *
    layer_decay ** (L - 1 - i)`` and the embeddings one step below the first layer."""
    fusion = model.fusion
    depth = len(fusion.layers)
    groups: dict[float, list] = {}
    for name, parameter in model.named_parameters():
        inner = name.removeprefix("fusion.")
        rate = lr
        if name.startswith("fusion.") and is_pretrained(inner):
            level = int(inner.split(".")[1]) if inner.startswith("layers.") else -1
            rate = lr_pretrained * layer_decay ** (depth - 1 - level)
        groups.setdefault(rate, []).append(parameter)
    return [{"params": params, "lr": rate} for rate, params in groups.items()]
