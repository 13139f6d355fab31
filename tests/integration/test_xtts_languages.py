"""XTTS's real classes on the dev checkpoint: every language of the model goes through text
processing and a short synthesis; languages come from the checkpoint's config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TEST_THREADS
from tests.support.clips import speech_clip
from voicecloning.engine.devmodel import LANGUAGES, build_dev_model
from voicecloning.engine.synthesis import encode_text
from voicecloning.engine.xtts import EngineConfig, XttsEngine
from voicecloning.errors import UnsupportedLanguage
from voicecloning.generation import GenerationOptions
from voicecloning.text import split_text

SAMPLES = {
    "en": "The weather is lovely today. Shall we walk?",
    "es": "Hoy hace buen tiempo. ¿Damos un paseo?",
    "fr": "Il fait beau aujourd'hui. On se promène ?",
    "de": "Heute ist schönes Wetter. Gehen wir spazieren?",
    "it": "Oggi è una bella giornata. Facciamo una passeggiata?",
    "pt": "Hoje está um dia lindo. Vamos passear?",
    "pl": "Dziś jest piękna pogoda. Idziemy na spacer?",
    "tr": "Bugün hava çok güzel. Yürüyüşe çıkalım mı?",
    "ru": "Сегодня прекрасная погода. Пойдём гулять?",
    "nl": "Het is mooi weer vandaag. Zullen we wandelen?",
    "cs": "Dnes je krásné počasí. Půjdeme na procházku?",
    "ar": "الطقس جميل اليوم. هل نتمشى؟",
    "zh-cn": "今天天气很好。我们去散步吧？",
    "hu": "Ma szép idő van. Sétáljunk egyet?",
    "ko": "오늘 날씨가 좋네요. 산책할까요?",
    "ja": "今日はいい天気ですね。散歩しましょうか？",
    "hi": "आज मौसम बहुत अच्छा है। क्या हम टहलने चलें?",
}


@pytest.fixture(scope="module")
def latents(engine: XttsEngine, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    import soundfile as sf

    audio, rate = sf.read(speech_clip(tmp_path_factory.mktemp("c") / "ref.wav", seconds=6), dtype="float32")
    return engine.compute_latents(audio, rate)


def test_languages_come_from_the_checkpoint_config(engine: XttsEngine) -> None:
    assert engine.languages() == LANGUAGES
    assert len(engine.languages()) == 17 and "hi" in engine.languages() and "th" not in engine.languages()


def test_latents_have_the_released_shapes(latents) -> None:  # type: ignore[no-untyped-def]
    assert tuple(latents.gpt_cond_latent.shape) == (1, 32, 128)  # 32 perceiver latents x model width
    assert tuple(latents.speaker_embedding.shape) == (1, 512, 1)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_language_is_tokenized_and_synthesized(engine: XttsEngine, latents, language: str) -> None:  # type: ignore[no-untyped-def]
    """Cleaned text maps onto the vocabulary (no unknown tokens) and yields audio."""
    model = engine.model()
    segments = split_text(SAMPLES[language], language, engine.char_limit(language))
    unk = model.tokenizer.tokenizer.token_to_id("[UNK]")
    for segment in segments:
        ids = encode_text(model.tokenizer, segment, language)
        assert ids[0] == model.tokenizer.tokenizer.token_to_id(f"[{language}]")
        assert unk not in ids, (language, segment, model.tokenizer.decode(ids))
    audio = engine.synthesize(latents, segments, language, GenerationOptions(seed=3))
    assert audio.dtype == np.float32 and audio.size > 0.3 * 24000 and np.abs(audio).max() > 0


def test_thai_is_refused_with_the_supported_languages(engine: XttsEngine, latents) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnsupportedLanguage) as info:
        engine.synthesize(latents, ["สวัสดีครับ"], "th", GenerationOptions())
    message = str(info.value)
    assert "'th' is not supported" in message and all(lang in message for lang in LANGUAGES)


def test_a_custom_checkpoint_adds_its_own_language(tmp_path: Path, latents) -> None:  # type: ignore[no-untyped-def]
    """A fine-tune whose config adds Thai is accepted: languages come from its config and vocab."""
    model_dir = build_dev_model(tmp_path / "thai-finetune", languages=(*LANGUAGES, "th"))
    engine = XttsEngine(EngineConfig(model_dir=model_dir, max_audio_tokens=8, precision="fp32", threads=TEST_THREADS))
    assert "th" in engine.languages() and engine.describe()["languages"][-1] == "th"
    tokenizer = engine.model().tokenizer
    ids = encode_text(tokenizer, "สวัสดีครับ", "th")
    assert ids[0] == tokenizer.tokenizer.token_to_id("[th]") and tokenizer.tokenizer.token_to_id("[UNK]") not in ids
    audio = engine.synthesize(latents, ["สวัสดีครับ"], "th", GenerationOptions(seed=1))
    assert audio.size > 0
