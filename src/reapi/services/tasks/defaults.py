"""The task models reapi ships, written in the same plain-data format operators use in YAML.

Prices here are examples, not anyone's list prices: operators set their own by overriding
``billing`` (see docs/tasks.md). Keeping the entries as data, parsed by the same loader as the
operator's YAML, proves the YAML format can express every built-in.
"""

from __future__ import annotations

from typing import Any

_ASPECTS_14 = [
    "auto", "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4",
    "9:16", "16:9", "9:21", "21:9", "1:2", "2:1",
]  # fmt: skip
_PROMPT = {"type": "string", "required": True, "min_length": 1, "max_length": 4000}
_URLS = {"type": "array", "items": "url"}
_STEMS = [
    "vocals", "drum", "bass", "piano", "electric_guitar", "acoustic_guitar",
    "synthesizer", "strings", "wind",
]  # fmt: skip
_SPLITTERS = ["auto", "andromeda", "perseus", "orion", "phoenix", "lyra", "lynx"]
_AUDIO_FORMATS = ["mp3", "wav", "flac", "aac", "ogg"]
# eSpeak NG language voices (its own codes); the library has more, which an operator may add.
_ESPEAK_VOICES = [
    "en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-029", "fr-fr", "fr-be", "de", "nl",
    "es", "es-419", "it", "pt", "pt-br", "sv", "da", "nb", "fi", "pl", "cs", "ru", "uk", "el",
    "tr", "ar", "he", "hi", "cmn", "yue", "ja", "ko", "vi", "id", "sw",
]  # fmt: skip

BUILTIN_TASK_MODELS: dict[str, dict[str, Any]] = {
    "gpt-image-2": {
        "kind": "image",
        "channel_type": "openai_images",
        "timeout_seconds": 300,
        "description": "Text-to-image; image_urls switches to image-to-image. One image per call.",
        "schema": {
            "prompt": {**_PROMPT, "max_length": 32000},
            "size": {"type": "string", "enum": _ASPECTS_14, "default": "auto"},
            "resolution": {"type": "string", "enum": ["1k", "2k", "4k"], "default": "1k"},
            "image_urls": {**_URLS, "max_items": 16},
        },
        "billing": {
            "unit": "generation",
            "tier_field": "resolution",
            "credits": {"1k": "20", "2k": "35", "4k": "60"},
        },
    },
    "veo3.1-fast": {
        "kind": "video",
        "channel_type": "fal",
        "timeout_seconds": 900,
        "description": "8-second clips; up to 3 reference images. Flat price per generation.",
        "schema": {
            "prompt": _PROMPT,
            "aspect_ratio": {"type": "string", "enum": ["16:9", "9:16"], "default": "16:9"},
            "resolution": {"type": "string", "enum": ["720p", "1080p", "4k"], "default": "720p"},
            "image_urls": {**_URLS, "max_items": 3},
        },
        "billing": {"unit": "generation", "credits": "400"},
    },
    "veo3.1-fast-official": {
        "kind": "video",
        "channel_type": "replicate",
        "timeout_seconds": 900,
        "description": "First-party channel: first/last-frame image-to-video, audio, 4K.",
        "schema": {
            "prompt": _PROMPT,
            "aspect_ratio": {"type": "string", "enum": ["16:9", "9:16"], "default": "16:9"},
            "resolution": {"type": "string", "enum": ["720p", "1080p", "4k"], "default": "720p"},
            "duration": {"type": "integer", "enum": [4, 6, 8], "default": 8},
            "first_frame_image": "url",
            "last_frame_image": "url",
            "generate_audio": {"type": "boolean", "default": True},
        },
        "modes": [
            {"name": "i2v", "when_any": ["first_frame_image"]},
            {"name": "t2v", "requires": ["prompt"]},
        ],
        "billing": {
            "unit": "second",
            "duration_field": "duration",
            "tier_field": "resolution",
            "credits": {"720p": "100", "1080p": "120", "4k": "300"},
        },
    },
    "doubao-seedance-2.0": {
        "kind": "video",
        "channel_type": "reapi",
        "timeout_seconds": 1800,
        "description": "The media fields present choose the mode: reference-driven, "
        "first/last-frame, image-to-video or text-to-video.",
        "schema": {
            "prompt": {**_PROMPT, "required": False},
            "resolution": {
                "type": "string",
                "enum": ["480p", "720p", "1080p", "4k"],
                "default": "720p",
            },
            "size": {
                "type": "string",
                "enum": ["21:9", "16:9", "4:3", "1:1", "3:4", "9:16", "adaptive"],
                "default": "16:9",
            },
            "duration": {"type": "integer", "min": 4, "max": 15, "default": 5},
            "image_urls": {**_URLS, "max_items": 9},
            "image_with_roles": {
                "type": "array",
                "min_items": 1,
                "max_items": 2,
                "items": {
                    "type": "object",
                    "properties": {
                        "url": {"type": "url", "required": True},
                        "role": {
                            "type": "string",
                            "required": True,
                            "enum": ["first_frame", "last_frame"],
                        },
                    },
                },
            },
            "video_urls": {**_URLS, "max_items": 3},
            "audio_urls": {**_URLS, "max_items": 3},
            "return_last_frame": {"type": "boolean", "default": False},
        },
        "exclusive": [["image_urls", "image_with_roles"]],
        "modes": [
            {"name": "reference", "when_any": ["video_urls", "audio_urls"]},
            {"name": "first_last_frame", "when_any": ["image_with_roles"]},
            {"name": "i2v", "when_any": ["image_urls"]},
            {"name": "t2v", "requires": ["prompt"]},
        ],
        "billing": {
            "unit": "second",
            "duration_field": "duration",
            "tier_field": "resolution",
            "credits": {"480p": "45", "720p": "95", "1080p": "210", "4k": "420"},
        },
    },
    "mureka-v9-song": {
        "kind": "audio",
        "channel_type": "reapi",
        "timeout_seconds": 900,
        "description": "Songs from lyrics; reference/vocal/melody ids are Mureka's own.",
        "schema": {
            "lyrics": {"type": "string", "required": True, "min_length": 1, "max_length": 3000},
            "prompt": {"type": "string", "max_length": 1024},
            "number_of_songs": {"type": "integer", "min": 1, "max": 3, "default": 1},
            "output_format": {"type": "string", "enum": ["mp3", "wav", "flac"], "default": "mp3"},
            "reference_id": "string",
            "vocal_id": "string",
            "melody_id": "string",
        },
        "billing": {"unit": "song", "count_field": "number_of_songs", "credits": "60"},
    },
    "audio-stem-separator": {
        "kind": "audio",
        "channel_type": "reapi",
        "timeout_seconds": 900,
        "max_source_seconds": 1200,
        "description": "Splits one stem out of a song; outputs the stem and the remainder.",
        "schema": {
            "audio_url": {"type": "url", "required": True},
            "stem": {"type": "string", "required": True, "enum": _STEMS},
            "splitter": {"type": "string", "enum": _SPLITTERS, "default": "auto"},
            "extraction_level": {
                "type": "string",
                "enum": ["deep_extraction", "clear_cut"],
                "default": "deep_extraction",
            },
            "multivocal": {"type": "string", "enum": ["lead_back"]},
            "dereverb_enabled": {"type": "boolean", "default": False},
            "encoder_format": {"type": "string", "enum": _AUDIO_FORMATS, "default": "mp3"},
        },
        "billing": {"unit": "source_minute", "credits": "200"},
    },
    "audio-multistem-splitter": {
        "kind": "audio",
        "channel_type": "reapi",
        "timeout_seconds": 900,
        "max_source_seconds": 1200,
        "description": "Several stems at once plus a no_multistem remainder.",
        "schema": {
            "audio_url": {"type": "url", "required": True},
            "stem_list": {
                "type": "array",
                "required": True,
                "min_items": 1,
                "max_items": len(_STEMS),
                "items": {"type": "string", "enum": _STEMS},
            },
            "splitter": {"type": "string", "enum": _SPLITTERS, "default": "auto"},
            "extraction_level": {
                "type": "string",
                "enum": ["deep_extraction", "clear_cut"],
                "default": "deep_extraction",
            },
            "encoder_format": {"type": "string", "enum": _AUDIO_FORMATS, "default": "mp3"},
        },
        "billing": {"unit": "stem_minute", "count_field": "stem_list", "credits": "200"},
    },
    "espeak-tts": {
        "kind": "audio",
        "channel_type": "espeak",
        "timeout_seconds": 120,
        "description": "Text-to-speech on the gateway's own machine with eSpeak NG (the tts "
        "extra): a robotic but clear voice, as a WAV file.",
        "schema": {
            "text": {"type": "string", "required": True, "min_length": 1, "max_length": 5000},
            "voice": {"type": "string", "enum": _ESPEAK_VOICES, "default": "en-us"},
            "speed": {
                "type": "integer",
                "min": 80,
                "max": 450,
                "default": 175,
                "description": "words per minute",
            },
            "pitch": {"type": "integer", "min": 0, "max": 100, "default": 50},
        },
        "billing": {"unit": "thousand_characters", "count_field": "text", "credits": "1"},
    },
}
