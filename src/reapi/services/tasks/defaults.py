"""The task models reapi ships, written in the same plain-data format operators use in YAML.

Every fact here comes from the models' public documentation. What it does not state is left
out rather than guessed: a field whose name is not public is not accepted, and a price that is
not public is not set. A model without a price cannot be served until the operator sets one
(``billing``, see docs/tasks.md); startup names what is missing, and ``TaskModel.unknown``
lets the docs pages say it. Keeping the entries as data, parsed by the same loader as the
operator's YAML, proves the YAML format can express every built-in.

``upstream`` holds how a vendor's API spells a field that this catalog spells the public way
(``size`` where Replicate wants ``aspect_ratio``); the adapters apply it, never special-case it.
"""

from __future__ import annotations

from typing import Any

_ASPECTS_14 = [
    "auto", "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4",
    "9:16", "16:9", "9:21", "21:9", "1:2", "2:1",
]  # fmt: skip
_PROMPT = {"type": "string", "required": True, "min_length": 1, "max_length": 4000}
_TEXT = {"type": "string", "min_length": 1}
_URLS = {"type": "array", "items": "url"}
_STEMS = [
    "vocals", "drum", "bass", "piano", "electric_guitar", "acoustic_guitar",
    "synthesizer", "strings", "wind",
]  # fmt: skip
_SPLITTERS = ["auto", "andromeda", "perseus", "orion", "phoenix", "lyra", "lynx"]
_AUDIO_FORMATS = ["mp3", "wav", "flac", "aac", "ogg"]
# The stem tools' "auto" splitter means "let the upstream choose": it is not sent at all.
_SPLITTER_AUTO_DROPPED = {"*": {"values": {"splitter": {"auto": None}}}}
# Replicate's Veo 3.1 takes the first and last frames as "image" and "last_frame".
_VEO_ON_REPLICATE = {
    "replicate": {"fields": {"first_frame_image": "image", "last_frame_image": "last_frame"}}
}
_VEO_SCHEMA = {
    "prompt": _PROMPT,
    "aspect_ratio": {"type": "string", "enum": ["16:9", "9:16"], "default": "16:9"},
    "resolution": {"type": "string", "enum": ["720p", "1080p", "4k"], "default": "720p"},
    "image_urls": {**_URLS, "max_items": 3},
}
_VEO_OFFICIAL_SCHEMA = {
    "prompt": _PROMPT,
    "aspect_ratio": {"type": "string", "enum": ["16:9", "9:16"], "default": "16:9"},
    "resolution": {"type": "string", "enum": ["720p", "1080p", "4k"], "default": "720p"},
    "duration": {"type": "integer", "enum": [4, 6, 8], "default": 8, "description": "Seconds."},
    "first_frame_image": {"type": "url", "description": "Image-to-video from this frame."},
    "last_frame_image": {"type": "url", "description": "The frame the clip ends on."},
    "generate_audio": {"type": "boolean", "default": True},
}
_VEO_OFFICIAL_MODES = [
    {"name": "i2v", "when_any": ["first_frame_image"]},
    {"name": "t2v", "requires": ["prompt"]},
]
_FLUX_SCHEMA = {
    "prompt": {"type": "string", "required": True, "min_length": 3, "max_length": 5000},
    # "auto" is only allowed with reference images, whose field name is not public.
    "aspect_ratio": {
        "type": "string",
        "enum": ["1:1", "4:3", "3:4", "16:9", "9:16", "3:2", "2:3"],
        "default": "1:1",
    },
    # 2K costs more, so 1K is the base tier a request without a resolution gets.
    "resolution": {"type": "string", "enum": ["1K", "2K"], "default": "1K"},
}
_SEED = {"type": "integer", "min": 0, "max": 2147483647}
_MUREKA_ID = "An id from Mureka's own upload system, passed through as is."
# eSpeak NG language voices (its own codes); the library has more, which an operator may add.
_ESPEAK_VOICES = [
    "en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-029", "fr-fr", "fr-be", "de", "nl",
    "es", "es-419", "it", "pt", "pt-br", "sv", "da", "nb", "fi", "pl", "cs", "ru", "uk", "el",
    "tr", "ar", "he", "hi", "cmn", "yue", "ja", "ko", "vi", "id", "sw",
]  # fmt: skip

BUILTIN_TASK_MODELS: dict[str, dict[str, Any]] = {
    # Image
    "gpt-image-2": {
        "kind": "image",
        "channel_type": "openai_images",
        "timeout_seconds": 300,
        "description": "OpenAI's image model on the low-cost channel: text-to-image, and "
        "image-to-image when image_urls is set. One image per call; no masks, quality tiers "
        "or transparency.",
        "schema": {
            "prompt": {**_PROMPT, "max_length": 32000},
            "size": {"type": "string", "enum": _ASPECTS_14, "default": "auto"},
            "resolution": {"type": "string", "enum": ["1k", "2k", "4k"], "default": "1k"},
            "image_urls": {
                **_URLS,
                "max_items": 16,
                "description": "Reference images; setting it switches to image-to-image.",
            },
        },
        "billing": {"unit": "generation", "tier_field": "resolution"},
    },
    "gpt-image-2-official": {
        "kind": "image",
        "channel_type": "openai_images",
        "timeout_seconds": 300,
        "description": 'OpenAI\'s image model on the first-party channel (shown as "Stable"): '
        "quality tiers and up to 4 images per call, always PNG. Mask inpainting and background "
        "control exist upstream, but their field names are not public, so they are not taken.",
        "schema": {
            "prompt": {**_PROMPT, "max_length": 32000},
            # The page names size and resolution; their values are the cheap channel's.
            "size": {"type": "string", "enum": _ASPECTS_14},
            "resolution": {"type": "string", "enum": ["1k", "2k", "4k"]},
            "quality": {"type": "string", "enum": ["auto", "low", "medium", "high"]},
            "n": {"type": "integer", "min": 1, "max": 4},
        },
    },
    "imagen-4-0": {
        "kind": "image",
        "channel_type": "replicate",
        "timeout_seconds": 300,
        "description": "Google Imagen 4: text-to-image only (no reference images, no masks), "
        "in five aspect ratios.",
        "schema": {
            "prompt": {**_TEXT, "required": True},
            "size": {"type": "string", "enum": ["1:1", "3:4", "4:3", "9:16", "16:9"]},
        },
        "upstream": {"replicate": {"fields": {"size": "aspect_ratio"}}},
        "billing": {"unit": "image"},
    },
    "midjourney": {
        "kind": "image",
        "channel_type": "reapi",
        "description": "Midjourney (V8 interface): four images per request; version picks "
        "v5.1 to v8.1 or niji, and action a generation, blend, edit, upscale, variation, zoom, "
        "pan, reroll or reshape. The fields an action needs beyond these, and the character, "
        "style and depth references, are not public.",
        "schema": {
            "prompt": _TEXT,
            "version": _TEXT,
            "size": _TEXT,
            "speed": _TEXT,
            "action": {
                "type": "string",
                "enum": [
                    "generation",
                    "blend",
                    "edit",
                    "upscale",
                    "variation",
                    "zoom",
                    "pan",
                    "reroll",
                    "reshape",
                ],
            },
        },
    },
    "mj-v7": {
        "kind": "image",
        "channel_type": "reapi",
        "description": "Midjourney V7: four images per request, steered by Midjourney's own "
        "flags inside the prompt (--ar, --s, --chaos, --sref, --oref). The edit operations that "
        "chain off a generated image take fields that are not public.",
        "schema": {
            "prompt": {**_TEXT, "required": True},
            "model_params": {"type": "object", "properties": {"speed": _TEXT}},
        },
    },
    "flux-2": {
        "kind": "image",
        "channel_type": "reapi",
        "description": "FLUX.2 Pro: text-to-image up to 4 megapixels. Reference images (1 to "
        "8) exist upstream under a field name that is not public, so they are not taken.",
        "schema": _FLUX_SCHEMA,
        "billing": {"unit": "image", "tier_field": "resolution"},
    },
    "flux-2-flex": {
        "kind": "image",
        "channel_type": "reapi",
        "description": "FLUX.2 Flex: the same request as FLUX.2 Pro on the Flex tier.",
        "schema": _FLUX_SCHEMA,
        "billing": {"unit": "image", "tier_field": "resolution"},
    },
    # Video
    "veo3.1-fast": {
        "kind": "video",
        "channel_type": "fal",
        "timeout_seconds": 900,
        "description": "Google Veo 3.1 Fast: 8-second clips from text, with up to 3 reference "
        "images. One price per generation.",
        "schema": _VEO_SCHEMA,
        "billing": {"unit": "generation"},
    },
    "veo3.1-quality": {
        "kind": "video",
        "channel_type": "fal",
        "timeout_seconds": 900,
        "description": "Google Veo 3.1 Quality: 8-second clips; images are used as frames "
        "(image-to-video in frame mode only). One price per generation.",
        "schema": _VEO_SCHEMA,
        "billing": {"unit": "generation"},
    },
    "veo3.1-lite": {
        "kind": "video",
        "channel_type": "reapi",
        "timeout_seconds": 900,
        "description": "Google Veo 3.1 Lite: 8-second clips from a prompt alone, no images.",
        "schema": {"prompt": _PROMPT},
        "billing": {"unit": "generation"},
    },
    "veo3.1-fast-official": {
        "kind": "video",
        "channel_type": "replicate",
        "timeout_seconds": 900,
        "description": "Google Veo 3.1 Fast on the first-party channel: first/last-frame "
        "image-to-video, audio, 4K, 4 to 8 seconds. Priced per second.",
        "schema": _VEO_OFFICIAL_SCHEMA,
        "modes": _VEO_OFFICIAL_MODES,
        "upstream": _VEO_ON_REPLICATE,
        "billing": {"unit": "second", "duration_field": "duration"},
    },
    "veo3.1-quality-official": {
        "kind": "video",
        "channel_type": "replicate",
        "timeout_seconds": 900,
        "description": "Google Veo 3.1 Quality on the first-party channel: the premium tier "
        "of veo3.1-fast-official, with the same request. Priced per second.",
        "schema": _VEO_OFFICIAL_SCHEMA,
        "modes": _VEO_OFFICIAL_MODES,
        "upstream": _VEO_ON_REPLICATE,
        "billing": {"unit": "second", "duration_field": "duration"},
    },
    "doubao-seedance-2.0": {
        "kind": "video",
        "channel_type": "reapi",
        "timeout_seconds": 1800,
        "description": "ByteDance Seedance 2.0. The media fields present choose the mode: "
        "reference-driven, first/last-frame, image-to-video or text-to-video.",
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
    },
    "happyhorse-1.0": {
        "kind": "video",
        "channel_type": "reapi",
        "timeout_seconds": 1800,
        "description": "HappyHorse 1.0: text-, image-, reference- and video-to-video. The "
        "media present choose the mode, video_url first, then first_frame_image, then "
        "image_urls; the price per second does not depend on it.",
        "schema": {
            "prompt": {
                **_TEXT,
                "max_length": 2500,
                "description": "Required for text-to-video, optional when media drive the video.",
            },
            "resolution": {"type": "string", "enum": ["720P", "1080P"], "default": "1080P"},
            # The length is the price; none is public as a default, so the client names it.
            "duration": {
                "type": "integer",
                "min": 3,
                "max": 15,
                "required": True,
                "description": "Seconds billed; the edit mode keeps the source's length.",
            },
            "seed": _SEED,
            "first_frame_image": {"type": "url", "description": "Image-to-video from this frame."},
            "image_urls": {
                **_URLS,
                "min_items": 1,
                "max_items": 9,
                "description": "Reference images (reference-to-video).",
            },
            "video_url": {"type": "url", "description": "A video to edit (edit mode)."},
            "audio_setting": {
                **_TEXT,
                "description": "origin keeps the source video's audio.",
            },
        },
        "modes": [
            {"name": "edit", "when_any": ["video_url"]},
            {"name": "i2v", "when_any": ["first_frame_image"]},
            {"name": "r2v", "when_any": ["image_urls"]},
            {"name": "t2v", "requires": ["prompt"]},
        ],
        # Published as $0.1625 and $0.2875 per second; the credit figures beside them (163,
        # 288) are those amounts rounded for display.
        "billing": {
            "unit": "second",
            "duration_field": "duration",
            "tier_field": "resolution",
            "credits": {"720P": "162.5", "1080P": "287.5"},
        },
    },
    "happyhorse-1.0-official": {
        "kind": "video",
        "channel_type": "reapi",
        "timeout_seconds": 1800,
        "description": "HappyHorse 1.0 on the first-party Aliyun Model Studio channel. The "
        "watermark is off unless asked for.",
        "schema": {
            "prompt": _TEXT,
            "resolution": _TEXT,
            "size": _TEXT,
            "duration": {"type": "integer", "min": 1},
            "seed": {"type": "integer", "min": 0},
            # The upstream's own default is true; this gateway's is false.
            "watermark": {
                "type": "boolean",
                "default": False,
                "description": "Off unless true (the upstream alone would add one).",
            },
        },
    },
    "happyhorse-1-1": {
        "kind": "video",
        "channel_type": "reapi",
        "timeout_seconds": 1800,
        "description": "HappyHorse 1.1, priced by resolution and length whatever the mode. "
        "Upstream it also takes up to 9 images, under field names that are not public, so this "
        "entry is text-to-video.",
        "schema": {
            "prompt": {**_TEXT, "required": True},
            "resolution": {"type": "string", "enum": ["720p", "1080p"], "required": True},
            "aspect_ratio": _TEXT,
            "duration": {"type": "integer", "min": 3, "max": 15, "required": True},
        },
        "billing": {"unit": "second", "duration_field": "duration", "tier_field": "resolution"},
    },
    "kling-3-0-turbo": {
        "kind": "video",
        "channel_type": "reapi",
        "timeout_seconds": 900,
        "description": "Kling 3.0 Turbo, the fast tier: text-to-video. Its image-to-video "
        "takes a first frame under a field name that is not public.",
        "schema": {
            "prompt": {**_TEXT, "required": True},
            "resolution": {"type": "string", "enum": ["720p", "1080p"], "default": "720p"},
            "aspect_ratio": _TEXT,
            "duration": {"type": "integer", "min": 1, "required": True},
        },
        "billing": {"unit": "second", "duration_field": "duration"},
    },
    "grok-imagine-video-1.5-beta": {
        "kind": "video",
        "channel_type": "reapi",
        "timeout_seconds": 900,
        "description": "Grok Imagine Video 1.5 (beta channel): image-to-video from exactly one "
        "image, with synchronised audio.",
        "schema": {
            "image_urls": {
                **_URLS,
                "required": True,
                "min_items": 1,
                "max_items": 1,
                "description": "The one image to animate.",
            },
            "prompt": _TEXT,
            "resolution": {"type": "string", "enum": ["480p", "720p"], "default": "720p"},
            "duration": {"type": "integer", "min": 1, "max": 15, "required": True},
            "aspect_ratio": _TEXT,
        },
        "billing": {"unit": "second", "duration_field": "duration"},
    },
    "grok-imagine-video-1.5-official": {
        "kind": "video",
        "channel_type": "reapi",
        "timeout_seconds": 900,
        "description": "Grok Imagine Video 1.5 on the first-party channel: a prompt, "
        "optionally one image, billed per second apart from the beta channel.",
        "schema": {
            "prompt": {**_TEXT, "required": True},
            "image_urls": {**_URLS, "max_items": 1},
            "aspect_ratio": {"type": "string", "enum": ["1:1", "16:9", "9:16"]},
            "resolution": _TEXT,
            "duration": {"type": "integer", "min": 3, "max": 15, "required": True},
        },
        "billing": {"unit": "second", "duration_field": "duration"},
    },
    "gemini-omni": {
        "kind": "video",
        "channel_type": "reapi",
        "timeout_seconds": 900,
        "description": "Gemini Omni video: the number of images and videos chooses the mode "
        "(text-to-video, image-to-video, three-image fusion, reference-to-video); one price "
        "per generation in every mode.",
        "schema": {
            "prompt": _TEXT,
            "duration": {"type": "integer", "min": 4, "max": 10},
            "resolution": {"type": "string", "enum": ["720p", "1080p", "4K"]},
            "aspect_ratio": _TEXT,
            "image_urls": _URLS,
            "video_urls": _URLS,
        },
        "modes": [
            {"name": "media", "when_any": ["image_urls", "video_urls"]},
            {"name": "t2v", "requires": ["prompt"]},
        ],
        "billing": {"unit": "generation"},
    },
    "topaz-video-upscaler": {
        "kind": "video",
        "channel_type": "reapi",
        "timeout_seconds": 1800,
        "description": "Topaz video upscaling by a factor of 1, 2 or 4. Its public price is "
        "per second of the source video, by factor: the operator sets a price in one of this "
        "gateway's units.",
        "schema": {
            "video_url": {"type": "url", "required": True},
            "upscale_factor": {
                "type": "string",
                "enum": ["1", "2", "4"],
                "description": 'A string: "1", "2" or "4".',
            },
        },
    },
    # Audio
    "mureka-v9-song": {
        "kind": "audio",
        "channel_type": "reapi",
        "timeout_seconds": 900,
        "description": "Mureka V9 songs from lyrics; the cost scales with number_of_songs. "
        "Reference, vocal and melody ids are Mureka's own.",
        "schema": {
            "lyrics": {"type": "string", "required": True, "min_length": 1, "max_length": 3000},
            "prompt": {"type": "string", "max_length": 1024},
            "number_of_songs": {"type": "integer", "min": 1, "max": 3, "default": 1},
            "output_format": {"type": "string", "enum": ["mp3", "wav", "flac"], "default": "mp3"},
            "reference_id": {"type": "string", "description": _MUREKA_ID},
            "vocal_id": {"type": "string", "description": _MUREKA_ID},
            "melody_id": {"type": "string", "description": _MUREKA_ID},
        },
        "billing": {"unit": "song", "count_field": "number_of_songs"},
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
            "splitter": {
                "type": "string",
                "enum": _SPLITTERS,
                "default": "auto",
                "description": "The separation engine; auto lets the upstream choose.",
            },
            "extraction_level": {
                "type": "string",
                "enum": ["deep_extraction", "clear_cut"],
                "default": "deep_extraction",
            },
            "multivocal": {
                "type": "string",
                "enum": ["lead_back"],
                "description": "Splits lead and backing vocals; only with stem vocals.",
            },
            "dereverb_enabled": {"type": "boolean", "default": False},
            "encoder_format": {"type": "string", "enum": _AUDIO_FORMATS, "default": "mp3"},
        },
        "upstream": _SPLITTER_AUTO_DROPPED,
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
            "splitter": {
                "type": "string",
                "enum": _SPLITTERS,
                "default": "auto",
                "description": "The separation engine; auto lets the upstream choose.",
            },
            "extraction_level": {
                "type": "string",
                "enum": ["deep_extraction", "clear_cut"],
                "default": "deep_extraction",
            },
            "encoder_format": {"type": "string", "enum": _AUDIO_FORMATS, "default": "mp3"},
        },
        "upstream": _SPLITTER_AUTO_DROPPED,
        "billing": {"unit": "stem_minute", "count_field": "stem_list", "credits": "200"},
    },
    "audio-voice-change": {
        "kind": "audio",
        "channel_type": "reapi",
        "timeout_seconds": 900,
        "description": "Sings or speaks a recording again in another voice (a voice pack); "
        "outputs the converted mix. Billed per started source minute.",
        "schema": {
            "audio_url": {"type": "url", "required": True},
            "voice_pack_id": {**_TEXT, "required": True},
            "accent": {"type": "number", "min": 0, "max": 1, "default": 1},
            "tonality_reference": {
                "type": "string",
                "enum": ["source_file", "voice_pack"],
                "default": "source_file",
            },
            "dereverb_enabled": "boolean",
            # The format list of the same vendor's stem tools.
            "encoder_format": {"type": "string", "enum": _AUDIO_FORMATS},
        },
        "billing": {"unit": "source_minute", "credits": "200"},
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
