"""Transcripts for the LLM tests: varied ASR-like Chinese, and what the stand-in makes of it."""

from __future__ import annotations

import random
import re

from actors.domain.video import VideoInfo

VIDEO = VideoInfo(
    url="https://www.bilibili.com/video/BV1xx411c7mD",
    platform="BiliBili",
    video_id="BV1xx411c7mD",
    title="机器学习入门：从零开始",
    author="小明讲技术",
)

_SUBJECTS = ["我们", "这个模型", "训练数据", "老师", "大家", "第一个例子", "这种方法", "整个系统"]
_VERBS = [
    "需要先理解",
    "可以帮助我们处理",
    "其实并不复杂地解释了",
    "会逐步学习",
    "经常被用来分析",
    "最后决定了",
]
_OBJECTS = [
    "损失函数的意义",
    "梯度下降的过程",
    "特征之间的关系",
    "过拟合的问题",
    "参数的初始化",
    "验证集的作用",
]
_TAILS = ["", ",这一点很重要", ",你可以自己试一试", ",后面还会再讲", ",所以要多加注意"]


def chinese_transcript(chars: int, seed: int = 7) -> str:
    """Varied ASR-like sentences (half-width commas, 。！？ endings), lines and paragraphs."""
    rng = random.Random(seed)
    parts: list[str] = []
    size = 0
    number = 0
    while size < chars:
        number += 1
        sentence = (
            f"第{number}句{rng.choice(_SUBJECTS)}{rng.choice(_VERBS)}"
            f"{rng.choice(_OBJECTS)}{rng.choice(_TAILS)}{rng.choice('。。。！？')}"
        )
        sentence += "\n\n" if number % 9 == 0 else "\n"
        parts.append(sentence)
        size += len(sentence)
    return "".join(parts).rstrip("\n")


def full_width(text: str) -> str:
    """What the fake proofreader does to these transcripts: commas after CJK become full-width."""
    return re.sub(r"(?<=[\u4e00-\u9fff]),", "，", text)
