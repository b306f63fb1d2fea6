"""Self-attention speed: the fusion model's written-out attention vs. nn.MultiheadAttention.

Both modules compute the same multi-head self-attention with a key padding mask (the fusion
layer's sublayer): `SelfAttention` (src/vecomp/fusion/model.py) and torch's
`nn.MultiheadAttention(batch_first=True)`, at the embedded default's sizes (width 64, 4 heads,
~40 tokens: [CLS], text, 2x2 grid, 2x2+1 patch and 10 region tokens). Timed, in one run and
interleaved:

- train: forward + backward of one batch, dropout on (as in `vecomp train`);
- eval: forward without gradients, dropout off (dev/test evaluation), with and without the
  attention map (the analysis asks for it).

Without a map `SelfAttention` runs torch's fused `scaled_dot_product_attention`; with one, its
written-out softmax.

    python bench/attention.py [--batch 32] [--tokens 40] [--width 64] [--heads 4] [--threads 1]
    python bench/attention.py --device cuda --batch 64 --tokens 303 --width 768 --heads 12

Prints milliseconds per call (median of --repeats rounds) and the speed-up of `SelfAttention`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import torch
from torch import nn

from vecomp.fusion.model import SelfAttention


class TorchAttention(nn.Module):
    """``nn.MultiheadAttention`` behind the same call as ``SelfAttention``."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)

    def forward(self, x, padding, attention):
        return self.attention(x, x, x, key_padding_mask=padding, need_weights=attention)


def wait_for(device: torch.device) -> None:
    """Let a GPU finish its queued kernels, so the clock measures them."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def milliseconds(call, calls: int, device: torch.device) -> float:
    call()  # warm-up
    wait_for(device)
    started = time.perf_counter()
    for _ in range(calls):
        call()
    wait_for(device)
    return (time.perf_counter() - started) / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=40)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--calls", type=int, default=100, help="calls per timing")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (fp32 on both)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    x = torch.randn(args.batch, args.tokens, args.width, device=device)
    padding = torch.zeros(args.batch, args.tokens, dtype=torch.bool, device=device)
    padding[:, args.tokens // 3 : args.tokens // 2] = True  # text padding, as in a batch
    modules = {
        "nn.MultiheadAttention": TorchAttention(args.width, args.heads, 0.1),
        "SelfAttention": SelfAttention(args.width, args.heads, 0.1),
    }
    modules = {name: module.to(device) for name, module in modules.items()}

    def train(module):
        module.train()
        out, _ = module(x, padding, False)
        out.sum().backward()

    def evaluate(module, attention):
        module.eval()
        with torch.no_grad():
            module(x, padding, attention)

    modes = {
        "train (fwd+bwd)": train,
        "eval": lambda m: evaluate(m, False),
        "eval + attention map": lambda m: evaluate(m, True),
    }
    times = {(mode, name): [] for mode in modes for name in modules}
    for _ in range(args.repeats):
        for mode, run in modes.items():
            for name, module in modules.items():
                times[mode, name].append(milliseconds(partial(run, module), args.calls, device))
    shape = f"batch {args.batch}, {args.tokens} tokens, width {args.width}, {args.heads} heads"
    print(f"{shape}, {args.device}, {args.threads} thread(s); ms per call, median of", args.repeats)
    print(f"{'mode':<22} {'nn.MultiheadAttention':>22} {'SelfAttention':>14} {'speed-up':>9}")
    for mode in modes:
        torch_ms = statistics.median(times[mode, "nn.MultiheadAttention"])
        ours_ms = statistics.median(times[mode, "SelfAttention"])
        print(f"{mode:<22} {torch_ms:>22.2f} {ours_ms:>14.2f} {torch_ms / ours_ms:>8.2f}x")


if __name__ == "__main__":
    main()
