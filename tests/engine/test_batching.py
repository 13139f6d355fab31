"""Several segments per GPT step give each segment what it would get alone."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from voicecloning.engine.batching import Sampling, generate_codes, teacher_forced_latents
from voicecloning.engine.synthesis import plan_batches

TEXTS = ([5, 6, 7, 8, 9, 10, 11], [12, 13, 14], [20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32])
GREEDY = Sampling(top_k=1)


def _codes(lengths: tuple[int, ...]) -> list[list[int]]:
    gen = torch.Generator().manual_seed(3)
    return [torch.randint(0, 1024, (n,), generator=gen).tolist() for n in lengths]


def _stock_latents(model: Any, cond: torch.Tensor, ids: list[int], codes: list[int]) -> torch.Tensor:
    """coqui's own teacher-forced pass for one row."""
    with torch.inference_mode():
        return model.gpt(
            torch.IntTensor(ids)[None],
            torch.tensor([len(ids)]),
            torch.tensor(codes)[None],
            torch.tensor([len(codes) * model.gpt.code_stride_len]),
            cond_latents=cond,
            return_latent=True,
        )


def test_batched_latents_equal_coqui_per_segment(stock_fp32: Any, voice: Any) -> None:
    """Left-padded rows of different text and code lengths get coqui's per-segment latents."""
    cond = voice.gpt_cond_latent
    codes = _codes((30, 17, 25))
    with torch.inference_mode():
        batched = teacher_forced_latents(stock_fp32.gpt, cond, list(TEXTS), codes)
    for ids, row_codes, latents in zip(TEXTS, codes, batched, strict=True):
        reference = _stock_latents(stock_fp32, cond, ids, row_codes)
        assert latents.shape == reference.shape == (1, len(row_codes), stock_fp32.args.gpt_n_model_channels)
        torch.testing.assert_close(latents, reference, atol=1e-5, rtol=1e-5)


def test_padding_rows_do_not_change_a_row(stock_fp32: Any, voice: Any) -> None:
    """A short row's latents are the same alone and next to a much longer row."""
    cond = voice.gpt_cond_latent
    short, long = _codes((10, 60))
    with torch.inference_mode():
        alone = teacher_forced_latents(stock_fp32.gpt, cond, [TEXTS[1]], [short])[0]
        padded = teacher_forced_latents(stock_fp32.gpt, cond, [TEXTS[1], TEXTS[2]], [short, long])[0]
    torch.testing.assert_close(alone, padded, atol=1e-5, rtol=1e-5)


def test_batched_generation_equals_single_rows(stock_fp32: Any, voice: Any) -> None:
    """Greedy decoding of three rows at once yields each row's codes decoded alone."""
    cond = voice.gpt_cond_latent
    with torch.inference_mode():
        together = generate_codes(stock_fp32.gpt, cond, list(TEXTS), GREEDY, max_new_tokens=12)
        alone = [generate_codes(stock_fp32.gpt, cond, [ids], GREEDY, max_new_tokens=12)[0] for ids in TEXTS]
    assert together == alone


def test_generation_matches_transformers_generate(stock_fp32: Any, voice: Any) -> None:
    """The decoding loop reproduces coqui's ``GPT.generate`` (transformers) token for token when greedy."""
    cond = voice.gpt_cond_latent
    with torch.inference_mode():
        ours = generate_codes(stock_fp32.gpt, cond, [TEXTS[0]], GREEDY, max_new_tokens=12)[0]
        theirs = stock_fp32.gpt.generate(
            cond_latents=cond,
            text_inputs=torch.IntTensor(TEXTS[0])[None],
            do_sample=True,
            top_k=1,
            top_p=0.85,
            temperature=0.75,
            repetition_penalty=5.0,
            max_new_tokens=12,
        )[0].tolist()
    stop = stock_fp32.gpt.stop_audio_token
    assert ours == (theirs[: theirs.index(stop) + 1] if stop in theirs else theirs)


def test_min_new_tokens_forces_the_count(stock_fp32: Any, voice: Any) -> None:
    """With min = max = N every row has exactly N codes and no stop token."""
    with torch.inference_mode():
        rows = generate_codes(
            stock_fp32.gpt, voice.gpt_cond_latent, list(TEXTS), Sampling(), max_new_tokens=9, min_new_tokens=9
        )
    assert [len(r) for r in rows] == [9, 9, 9]
    assert all(stock_fp32.gpt.stop_audio_token not in r for r in rows)


def test_plan_batches_groups_similar_lengths_and_keeps_every_segment() -> None:
    """Batches hold at most batch_size segments, shortest texts first, each segment once."""
    tokens = [[0] * n for n in (9, 2, 7, 3, 8)]
    assert plan_batches(tokens, 2) == [[1, 3], [2, 4], [0]]
    assert plan_batches(tokens, 8) == [[1, 3, 2, 4, 0]]


def test_plan_batches_balances_the_batches() -> None:
    """Six segments at batch size 4 make two batches of three."""
    assert [len(b) for b in plan_batches([[0]] * 6, 4)] == [3, 3]
    assert plan_batches([], 4) == []


def test_latents_kept_while_decoding_equal_the_teacher_forced_pass(stock_fp32: Any, voice: Any) -> None:
    """The hidden states kept during decoding are coqui's teacher-forced latents of the same codes."""
    from voicecloning.engine.batching import decode_rows

    cond = voice.gpt_cond_latent
    with torch.inference_mode():
        rows = decode_rows(stock_fp32.gpt, cond, list(TEXTS), Sampling(), max_new_tokens=14)
    for ids, row in zip(TEXTS, rows, strict=True):
        reference = _stock_latents(stock_fp32, cond, ids, row.codes)
        torch.testing.assert_close(row.latents, reference, atol=1e-4, rtol=1e-4)


def _streams(seeds: tuple[int, ...]) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(seed) for seed in seeds]


def test_a_sampled_row_does_not_depend_on_its_batch(stock_fp32: Any, voice: Any) -> None:
    """With its own random stream, a row samples the same codes alone and beside rows that stop earlier (fp32)."""
    cond, limits, seeds = voice.gpt_cond_latent, [5, 14, 9], (101, 202, 303)
    with torch.inference_mode():
        together = generate_codes(
            stock_fp32.gpt, cond, list(TEXTS), Sampling(),
            max_new_tokens=limits, min_new_tokens=limits, generators=_streams(seeds),
        )
        alone = [
            generate_codes(
                stock_fp32.gpt, cond, [ids], Sampling(),
                max_new_tokens=[n], min_new_tokens=[n], generators=_streams((seed,)),
            )[0]
            for ids, n, seed in zip(TEXTS, limits, seeds, strict=True)
        ]
    assert [len(row) for row in together] == limits
    assert together == alone


def test_finished_rows_leave_the_batch(stock_fp32: Any, voice: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a row reaches its limit, later GPT steps run on the remaining rows only."""
    from voicecloning.engine import kvdecode

    widths: list[int] = []
    original = kvdecode.CachedGPT2.__call__

    def spy(self: Any, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        widths.append(x.shape[0])
        return original(self, x, padding)

    monkeypatch.setattr(kvdecode.CachedGPT2, "__call__", spy)
    limits = [2, 6, 4]
    with torch.inference_mode():
        rows = generate_codes(
            stock_fp32.gpt, voice.gpt_cond_latent, list(TEXTS), Sampling(),
            max_new_tokens=limits, min_new_tokens=limits, generators=_streams((1, 2, 3)),
        )
    assert [len(row) for row in rows] == limits
    # prefill, then one call per step after the first: 3 rows until step 2, 2 until step 4, then 1
    assert widths == [3, 3, 2, 2, 1, 1]


def test_kept_latents_stay_right_after_rows_leave(stock_fp32: Any, voice: Any) -> None:
    """Latents kept after the cache dropped finished rows still equal coqui's teacher-forced pass."""
    from voicecloning.engine.batching import decode_rows

    cond, limits = voice.gpt_cond_latent, [3, 12, 7]
    with torch.inference_mode():
        rows = decode_rows(
            stock_fp32.gpt, cond, list(TEXTS), Sampling(), max_new_tokens=limits, min_new_tokens=limits
        )
    for ids, row in zip(TEXTS, rows, strict=True):
        torch.testing.assert_close(row.latents, _stock_latents(stock_fp32, cond, ids, row.codes), atol=1e-4, rtol=1e-4)
