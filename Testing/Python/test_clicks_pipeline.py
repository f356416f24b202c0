"""Include/exclude points: parsed in RAS, mapped through pipeline.geometry onto the right voxel on
flipped, permuted and oblique volumes, alone defining one lesion, with text overruling the words;
bad points are one-line input errors."""

from __future__ import annotations

import numpy as np
import pytest

from test_engine_helpers import DIRECTIONS, add_ellipsoid, grid_image
from TextLesionSegLib.errors import InputError
from TextLesionSegLib.models.base import InferenceSettings
from TextLesionSegLib.models.interactive.region_grow import RegionGrowSegmenter
from TextLesionSegLib.pipeline.clicks import (apply_clicks, as_points, input_voxel, parse_point, region_of_clicks,
                                             working_clicks)
from TextLesionSegLib.pipeline.geometry import lps_to_ras
from TextLesionSegLib.pipeline.preprocess import to_working_grid
from TextLesionSegLib.pipeline.result import Result, SegmentResult
from TextLesionSegLib.pipeline.run import segment

CENTRE = np.array([12.0, -30.0, 41.0])
LEFT_AT, RIGHT_AT = CENTRE + [0.0, 0.0, 12.0], CENTRE + [0.0, 0.0, -12.0]  # LPS: two balls along S


def _two_balls(name: str):
    img = grid_image((40, 48, 44), (1.2, 1.1, 1.5), DIRECTIONS[name], CENTRE, fill=20.0)  # soft tissue
    img.array[:, :, :4] = -1000.0  # and some air, so the image reads as CT
    upper = add_ellipsoid(img, LEFT_AT, (7.0, 7.0, 7.0), 180.0)
    lower = add_ellipsoid(img, RIGHT_AT, (7.0, 7.0, 7.0), 180.0)
    return img, upper, lower


def _ras(lps) -> tuple[float, float, float]:
    return tuple(float(v) for v in lps_to_ras(np.asarray(lps, float)))


def _dice(a, b) -> float:
    return 2.0 * float(np.sum((a > 0) & (b > 0))) / max(1, int(np.sum(a > 0)) + int(np.sum(b > 0)))


def test_points_parse_negative_numbers_and_refuse_malformed_ones():
    assert parse_point("-54.6,97.5,-250") == (-54.6, 97.5, -250.0)
    assert parse_point(" 1 , 2,3 ") == (1.0, 2.0, 3.0)
    assert as_points([(1, 2, 3), "4,5,6"], "p") == [(1.0, 2.0, 3.0), (4.0, 5.0, 6.0)]
    for bad in ("1,2", "1,2,3,4", "a,b,c", "1,2,nan", "", "1;2;3"):
        with pytest.raises(InputError, match="R,A,S"):
            parse_point(bad)
    for bad in ([(1, 2)], [("x", 1, 2)], [(1, 2, float("inf"))], [5]):
        with pytest.raises(InputError, match="three finite numbers"):
            as_points(bad, "include point")


@pytest.mark.parametrize("name", sorted(DIRECTIONS))
def test_a_ras_point_lands_on_its_voxel_on_the_input_and_the_working_grid(name):
    img, upper, _ = _two_balls(name)
    target = np.argwhere(upper)[len(np.argwhere(upper)) // 3]  # some voxel of the ball, not its centre
    ras = _ras(img.kji_to_lps(target))
    assert input_voxel(img, ras) == tuple(int(v) for v in target)
    volume, grid = to_working_grid(img, RegionGrowSegmenter().preprocessing)
    click = working_clicks(grid, [_ras(LEFT_AT)], [ras])
    assert [c.positive for c in click] == [True, False]
    # the working voxel of the ball's centre is inside the ball, physically within a voxel
    lps = grid.working.kji_to_lps(np.asarray(click[0].kji, float))
    assert np.linalg.norm(lps - LEFT_AT) <= 0.5 * np.linalg.norm(grid.working.spacing) + 1e-6
    assert float(volume[0, 0][click[0].kji]) > 0.8  # bright: (180 + 175) / 425


@pytest.mark.parametrize("name", sorted(DIRECTIONS))
def test_points_alone_segment_the_clicked_ball_only(name):
    img, upper, lower = _two_balls(name)
    result = segment(img, [], RegionGrowSegmenter(), include_points=[_ras(LEFT_AT)])
    assert [s.name for s in result.segments] == ["Clicked lesion"]
    mask = result.segments[0].mask
    assert mask.shape == img.array.shape and _dice(mask, upper) > 0.8 and not (mask & lower).any()
    assert result.segments[0].selection["mode"] == "clicks"
    assert result.segments[0].selection["clicks"]["include"] == [list(_ras(LEFT_AT))]


def test_only_the_region_around_the_clicks_is_run_on_a_long_scan():
    img = grid_image((200, 40, 40), (1.0, 1.0, 2.0), DIRECTIONS["flipped"], CENTRE, fill=20.0)  # 400 mm long
    img.array[:, :, :4] = -1000.0
    ball = add_ellipsoid(img, CENTRE + [0.0, 0.0, 100.0], (7.0, 7.0, 7.0), 180.0)
    far = add_ellipsoid(img, CENTRE + [0.0, 0.0, -150.0], (7.0, 7.0, 7.0), 180.0)
    model = RegionGrowSegmenter()
    box = region_of_clicks(img, [_ras(CENTRE + [0.0, 0.0, 100.0])], [], None, model)
    extent_k = (box[0].stop - box[0].start) * 2.0
    assert 64 * 2.0 <= extent_k <= 64 * 2.0 + 12 and ball[box].sum() == ball.sum() and not far[box].any()
    result = segment(img, [], model, include_points=[_ras(CENTRE + [0.0, 0.0, 100.0])])
    assert _dice(result.segments[0].mask, ball) > 0.8


def test_points_outside_the_image_or_without_an_include_point_are_input_errors():
    img, _, _ = _two_balls("oblique")
    far = _ras(CENTRE + [0.0, 0.0, 200.0])
    with pytest.raises(InputError, match="outside the image"):
        segment(img, [], RegionGrowSegmenter(), include_points=[far])
    with pytest.raises(InputError, match="outside the image"):
        segment(img, [], RegionGrowSegmenter(), include_points=[_ras(LEFT_AT)], exclude_points=[far])
    with pytest.raises(InputError, match="include"):
        segment(img, [], RegionGrowSegmenter(), exclude_points=[_ras(LEFT_AT)])


def _answer(img, mask, name="mass in the right lung") -> Result:
    seg = SegmentResult(name=name, mask=mask.astype(np.uint8), selection={"found": True, "mode": "measured"})
    other = SegmentResult(name="another finding", mask=np.zeros(img.array.shape, np.uint8))
    other.mask[0, 0, :3] = 1  # a segment the clicks must leave alone
    return Result(image=img, segments=[seg, other], model_name="words", model_version="0")


def test_a_click_outside_the_chosen_lesion_overrules_the_words():
    img, upper, lower = _two_balls("permuted")
    result = _answer(img, lower)  # the words chose the lower ball; the user clicks the upper one
    kept = result.segments[1].mask.copy()
    apply_clicks(result, [_ras(LEFT_AT)], [], RegionGrowSegmenter(), InferenceSettings())
    mask = result.segments[0].mask
    assert _dice(mask, upper) > 0.8 and not (mask & lower).any()
    assert result.segments[0].name == "mass in the right lung"  # still the described lesion's segment
    np.testing.assert_array_equal(result.segments[1].mask, kept)
    assert any("replaces it" in w for w in result.warnings)


def test_an_exclude_click_removes_the_piece_it_marks_from_the_chosen_segment():
    img, upper, lower = _two_balls("flipped")
    result = _answer(img, upper | lower)  # the words' answer covers both balls
    apply_clicks(result, [], [_ras(RIGHT_AT)], RegionGrowSegmenter(), InferenceSettings())
    mask = result.segments[0].mask
    assert _dice(mask, upper) > 0.8 and not (mask & lower).any()
    assert not result.warnings


@pytest.mark.parametrize("ball", ["upper", "lower"])
def test_text_and_a_click_through_segment_give_the_clicked_lesion_whatever_the_words_chose(ball):
    from test_engine_run import ThresholdSegmenter

    img, upper, lower = _two_balls("oblique")
    target, other, at = (upper, lower, LEFT_AT) if ball == "upper" else (lower, upper, RIGHT_AT)
    words = segment(img, ["round mass in the right lung"], ThresholdSegmenter())
    result = segment(img, ["round mass in the right lung"], ThresholdSegmenter(), include_points=[_ras(at)],
                     click_model=RegionGrowSegmenter())
    assert len(result.segments) == 1 and result.model_name == "threshold-test + region-grow"
    mask = result.segments[0].mask
    assert _dice(mask, target) > 0.8 and not (mask & other).any()
    # the words alone answered one of the balls; where it was the other one, the click overruled them
    overruled = not (words.segments[0].mask & target).any()
    assert overruled == any("replaces it" in w for w in result.warnings)


def test_the_words_warnings_go_with_the_answer_a_click_replaces():
    from test_engine_run import ThresholdSegmenter

    img, upper, _ = _two_balls("flipped")
    blind = ThresholdSegmenter(level=1.5)  # sees nothing: the words' answer is empty
    words = segment(img, ["round mass in the right lung"], blind)
    assert any("no lesion found" in w for w in words.warnings)
    result = segment(img, ["round mass in the right lung"], blind, include_points=[_ras(LEFT_AT)],
                     click_model=RegionGrowSegmenter())
    assert _dice(result.segments[0].mask, upper) > 0.8
    assert not any("no lesion found" in w for w in result.warnings)
