"""The Mandarin benchmark's character error rate (bench.cer), on hand-checked cases."""

from __future__ import annotations

import pytest

from bench.cer import ErrorCount, cer, count_errors, edit_distance, normalise, read_integer, spell_numerals, total


@pytest.mark.parametrize(
    ("reference", "hypothesis", "distance"),
    [
        ("", "", 0),
        ("abc", "abc", 0),
        ("abc", "", 3),  # three deletions
        ("", "ab", 2),  # two insertions
        ("成都", "程度", 2),  # two substitutions
        ("今天天气很好", "今天气很好", 1),  # one deletion
        ("拜登", "python", 6),  # 2 substitutions + 4 insertions
        ("kitten", "sitting", 3),
    ],
)
def test_edit_distance(reference: str, hypothesis: str, distance: int) -> None:
    assert edit_distance(reference, hypothesis) == distance
    assert edit_distance(hypothesis, reference) == distance  # symmetric


@pytest.mark.parametrize(
    ("number", "spoken"),
    [
        (0, "零"),
        (8, "八"),
        (10, "十"),
        (16, "十六"),
        (98, "九十八"),
        (101, "一百零一"),
        (110, "一百一十"),
        (1010, "一千零一十"),
        (5999, "五千九百九十九"),
        (10000, "一万"),
        (10005, "一万零五"),
        (100000, "十万"),
        (2000000, "二百万"),
        (100010000, "一亿零一万"),
    ],
)
def test_integers_are_read_as_mandarin_speakers_say_them(number: int, spoken: str) -> None:
    assert read_integer(number) == spoken


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("2024年第三季度", "二零二四年第三季度"),  # a year: digit by digit
        ("公元208年", "公元二零八年"),
        ("上涨了16%", "上涨了百分之十六"),
        ("百公里加速4.4秒", "百公里加速四点四秒"),
        ("起售价5,999元", "起售价五千九百九十九元"),
        ("湖人以101比98获胜", "湖人以一百零一比九十八获胜"),
        ("iPhone 16", "iPhone 十六"),
        ("没有数字", "没有数字"),
    ],
)
def test_numerals_are_spelled_as_read_aloud(written: str, spoken: str) -> None:
    assert spell_numerals(written) == spoken


def test_normalise_strips_punctuation_and_spaces_and_lowercases() -> None:
    assert normalise("大家好，欢迎回到我的频道！ 今天用 ChatGPT。") == "大家好欢迎回到我的频道今天用chatgpt"
    assert normalise("《黑神话：悟空》“BOSS”……") == "黑神话悟空boss"


def test_year_written_either_way_is_no_error() -> None:
    assert cer("二〇二四年", "2024年") == 0.0
    assert cer("2024年第三季度", "二零二四年第三季度") == 0.0
    assert cer("２０２４年", "2024年") == 0.0  # full-width digits


def test_two_and_liang_are_the_same_numeral() -> None:
    assert cer("只要两个小时", "只要2个小时") == 0.0


def test_traditional_characters_count_as_their_simplified_form() -> None:
    assert normalise("這場戰役奠定了三國鼎立的局面") == "这场战役奠定了三国鼎立的局面"
    assert cer("这场战役奠定了三国鼎立的局面", "這場戰役奠定了三國鼎立的局面") == 0.0


def test_cer_counts_against_the_normalised_reference() -> None:
    # 今天我们用python (11 characters) heard as 今天我们用拜登: 2 substitutions, 4 deletions.
    counted = count_errors("今天我们用Python。", "今天我们用拜登")
    assert counted == ErrorCount(errors=6, length=11)
    assert counted.rate == pytest.approx(6 / 11)
    assert cer("成都", "程度") == 1.0


def test_total_pools_edits_over_all_reference_characters() -> None:
    pooled = total([ErrorCount(1, 10), ErrorCount(3, 30)])
    assert pooled == ErrorCount(4, 40)
    assert pooled.rate == pytest.approx(0.1)
    assert total([]).rate == 0.0
