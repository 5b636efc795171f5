"""Shared fixtures live in tests/support/ as pytest plugins, registered here."""

pytest_plugins: list[str] = [
    "tests.support.asr",
    "tests.support.fake_llm",
    "tests.support.wecom_receiver",
    "tests.support.wecom_bot_server",
    "tests.support.video_site",
    "tests.support.service",
    "tests.support.local_gateway",
]
