"""Reading pages: scoring, rules taken out of the ink, generated photo-like pages, the labelled-photo
evaluation, and (when ../shared is beside the repository) the real photos themselves."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge import touching
from edge.images import read_image
from edge.interpreter import DigitModel
from edge.layout import row_tilt, rule_tilt
from edge.lines import drawn_boxes, remove_lines
from edge.preprocess import find_digits
from edge import reading
from edge.score import Score, digit_string, score

from conftest import ROOT
from synthetic.pages import label, page

PHOTOS = Path(os.environ.get("PHOTOS_DIR", ROOT.parent / "shared" / "datasets" / "real-photos"))


def test_score_counts_right_extra_and_cer():
    assert score("10 10 1982", "10101982") == Score(8, 8, 0, 0)              # layout is not scored
    assert score("123\n45", "1293/45") == Score(5, 5, 1, 1)                    # one extra digit
    assert score("12345", "1?345") == Score(5, 4, 0, 1)                        # '?' is a substitution
    assert score("12345", "135") == Score(5, 3, 0, 2)                          # two misses
    assert score("12", "21").right == 1 and score("12", "21").errors == 2
    assert score("0123", "").cer == 1.0
    assert score("12 345", "17 345") == Score(5, 4, 1, 1, misread=1)          # a 2 read as 7: an extra that is a misread
    assert score("1234", "71234") == Score(4, 4, 1, 1, misread=0)            # a mark before the number: not a misread
    assert score("12345", "1?7345") == Score(5, 4, 1, 2, misread=0)          # the '?' stands for the 2, the 7 is a mark
    assert score("1234\n5678", "1734\n5978") == Score(8, 6, 2, 2, misread=2)  # one misread in each row


def test_rules_go_and_strokes_that_cross_them_stay():
    mask = np.zeros((200, 400), np.uint8)
    mask[100:102, :] = 1                       # a ruled line across the page
    mask[80:120, 50:53] = 1                    # a 1 written across it
    mask[20:60, 200:202] = 1                   # box: two sides between two rules
    mask[20:22, 150:300] = 1
    mask[58:60, 150:300] = 1
    mask[170:178, 300:330] = 1                 # a short thick bar (a 7's): not a rule
    kept, lines = remove_lines(mask, text_height=40)
    assert kept[100:102, 100:400].sum() == 0 and kept[20:22, 160:290].sum() == 0      # rules gone
    assert kept[30:50, 200:202].sum() == 0                                             # box side gone
    assert kept[80:120, 50:53].all()                                                   # the 1 is whole
    assert kept[170:178, 300:330].all()


def test_a_pen_stroke_filling_a_square_of_a_faint_grid_is_no_box_side():
    """A box's sides are drawn with its top and bottom; a 1 written in pen in a square of a faint
    printed grid ends on two rules too, and was taken out as a box side."""
    ink = np.zeros((200, 400), np.uint8)
    for y in (40, 100, 160):
        ink[y:y + 2, :] = 60                   # a faint grid's rules
    ink[41:101, 100:104] = 200                 # a 1 in pen, from rule to rule
    ink[101:161, 250:252] = 60                 # a box side, drawn like the rules
    mask = (ink > 0).astype(np.uint8)
    kept, _ = remove_lines(mask, text_height=40, ink=ink)
    assert kept[50:90, 100:104].all()
    assert kept[110:150, 250:252].sum() == 0 and kept[40:42, 150:400].sum() == 0
    kept, _ = remove_lines(mask, text_height=40)      # the ink's strength unknown: both are sides
    assert kept[50:90, 100:104].sum() == 0


@pytest.fixture(scope="module")
def model(published_model):
    return DigitModel(published_model)


def read(model: DigitModel, image: np.ndarray) -> str:
    """What the camera loop prints for this image."""
    return reading.read(model, image)[0].text


def truth_of(name: str) -> str:
    """The labels of one of the shared real photos."""
    return json.loads((PHOTOS / "labels.json").read_text())[name]


def labelled_photo(name: str) -> tuple[np.ndarray, str]:
    """One of the shared real photos, decoded as the folder reader decodes it, and its labels."""
    return read_image(str(PHOTOS / name)), truth_of(name)


def test_generated_pages_on_a_table_are_read(mnist, model):
    """Floors, not targets: ruled, squared, boxed and plain sheets in perspective with a shadow.
    The printed heading ("Name / Class / Date") is not rejected yet, so extras stay bounded, not zero."""
    x, y = mnist[1]
    rng = np.random.default_rng(0)
    total = Score(0, 0, 0, 0)
    for paper in ("ruled", "squared", "boxed", "plain") * 2:
        idx = rng.choice(len(x), 12, replace=False)
        image = page([x[i] for i in idx], rng, paper=paper, rows=2)
        s = score(label([int(y[i]) for i in idx], 2), read(model, image))
        assert s.right >= 9, (paper, s)
        total = total + s
    print(f"generated pages: {total}")
    assert total.right / total.true >= 0.9 and total.extra <= 60, total


def test_small_sheets_on_a_big_dark_table_are_read_as_dark_ink(mnist, model):
    """A sheet filling a third of the photo, the rest a darker table: seen through a wide window
    the bright sheet is the minority, as chalk on a board would be; the polarity must come from a
    window that sees the strokes (with the wide window alone these read 1 of 48)."""
    x, y = mnist[1]
    rng = np.random.default_rng(6)
    total = Score(0, 0, 0, 0)
    for paper in ("plain", "ruled") * 2:
        idx = rng.choice(len(x), 12, replace=False)
        image = page([x[i] for i in idx], rng, paper=paper, rows=2, heading=False, table=(1.85, 1.8))
        total = total + score(label([int(y[i]) for i in idx], 2), read(model, image))
    print(f"sheets on a big table: {total}")
    assert total.right >= 0.8 * total.true and total.extra <= 6, total


def test_row_tilt_levels_rows_from_their_centres():
    """row_tilt gives the turn (OpenCV's sense) that undoes the one the rows were given."""
    rng = np.random.default_rng(2)
    centres = np.array([(60 + 50 * c + rng.integers(-3, 4), 300 + 90 * r + rng.integers(-3, 4), 1)
                        for r in range(3) for c in range(8)], float)     # 3 rows of 8 digits 40 px tall
    for angle in (-12.0, -7.0, 3.0, 9.5):
        turned = centres @ cv2.getRotationMatrix2D((250, 400), angle, 1.0).T
        boxes = np.array([(cx - 12, cy - 20, 24, 40, 300) for cx, cy in turned], int)
        assert abs(row_tilt(boxes, 40.0) + angle) <= 0.5, angle
    level = np.array([(cx - 12, cy - 20, 24, 40, 300) for cx, cy, _ in centres], int)
    assert row_tilt(level, 40.0) == 0.0
    assert row_tilt(level[:5], 40.0) is None                                  # too few pieces to tell
    assert row_tilt(level * [1, 1, 1, 0, 1] + [0, 0, 0, 3, 0], 40.0) is None  # dots, not characters


def test_rule_tilt_levels_rules_that_digits_stand_on():
    """Ruled paper whose digits stand on the rules: digit and rule are one piece, so row_tilt has
    too few pieces to tell; the rules' own pixels give the angle."""
    for angle in (-10.0, -6.0, 7.5, 12.0):
        mask = np.zeros((600, 1000), np.uint8)
        for y in (150, 300, 450):
            cv2.line(mask, (0, y), (999, y), 1, 2)
        for i, digit in enumerate("561247"):
            cv2.putText(mask, digit, (100 + 130 * i, 300), cv2.FONT_HERSHEY_SIMPLEX, 3, 1, 5)
        turned = cv2.warpAffine(mask, cv2.getRotationMatrix2D((500, 300), angle, 1.0), (1000, 600),
                                flags=cv2.INTER_NEAREST)
        boxes = cv2.connectedComponentsWithStats(turned, connectivity=8)[2][1:]
        assert row_tilt(boxes, 60.0) is None, angle
        assert abs(rule_tilt(turned, boxes) + angle) <= 0.3, (angle, rule_tilt(turned, boxes))
    assert rule_tilt(mask, cv2.connectedComponentsWithStats(mask, connectivity=8)[2][1:]) == 0.0


@pytest.mark.skipif(not (PHOTOS / "adelian14_digits.jpg").is_file(), reason="shared real photos not beside the repository")
def test_real_ruled_notebook_turned_is_levelled_by_its_rules(model):
    """The shared photo of a ruled notebook whose digits stand on the rules, turned as a page
    photographed askew: every digit is read (unlevelled, 1 or 2 of 6 from 6 degrees on)."""
    from bench.photos import turn
    image = cv2.imread(str(PHOTOS / "adelian14_digits.jpg"))
    for angle in (6, -6, 10, -10):
        assert read(model, turn(image, angle)) == "561247", angle


@pytest.mark.skipif(not (PHOTOS / "OliverLengwinat_kniffel_1_orig.jpg").is_file(),
                    reason="shared real photos not beside the repository")
def test_real_score_card_further_away_is_read_as_dark_ink(model):
    """The shared score card on its black table, photographed from further away (the same frame
    with 50 and 100 % of its width and height more table on every side): seen whole, the card is the bright
    minority chalk would be; seen alone, its ink is dark. Without the card's own view these read
    nothing (0 of 32)."""
    from bench.photos import on_table
    from edge.ink import to_gray
    from edge.paper import dark_ink
    from edge.preprocess import first_look
    name = "OliverLengwinat_kniffel_1_orig.jpg"
    image = cv2.imread(str(PHOTOS / name))
    for percent in (50, 100):
        assert dark_ink(first_look(to_gray(on_table(image, percent)))[0]), percent
    s = score(truth_of(name), read(model, on_table(image, 50)))
    assert s.right >= 10, s


@pytest.mark.skipif(not (PHOTOS / "niraj-dudani_wild_2.jpeg").is_file(),
                    reason="shared real photos not beside the repository")
def test_real_photos_in_a_flat_surround_keep_their_ink_level(model):
    """Photos whose own edge is paper, further away on a surround of that colour with no texture
    (a smooth desk, clipped highlights): counted in, the flat surround put the noise floor under
    the paper's texture, which then passed for ink and joined into one piece (these read 3 of 55
    when this was written)."""
    from bench.photos import on_table
    truth = json.loads((PHOTOS / "labels.json").read_text())
    total = Score(0, 0, 0, 0)
    for name, percent in (("niraj-dudani_wild_2.jpeg", 25), ("niraj-dudani_wild_2.jpeg", 50),
                          ("vinay0410_numbers2.jpg", 25), ("vinay0410_numbers2.jpg", 50),
                          ("MrLokans_digits.jpg", 100)):
        total = total + score(truth[name], read(model, on_table(cv2.imread(str(PHOTOS / name)), percent)))
    print(f"photos in a flat surround: {total}")
    assert total.right >= 0.85 * total.true and total.extra <= 3, total


def test_tilted_pages_are_levelled(mnist, model):
    """Sheets turned by 10 degrees on the table: the rows are levelled before digits are looked
    for (unlevelled, these pages read 40 of 72 when this was written), and each digit's box still
    lies over the digit in the input's pixels."""
    x, y = mnist[1]
    rng = np.random.default_rng(5)
    total, over_ink, boxes = Score(0, 0, 0, 0), 0, 0
    for paper, tilt in (("ruled", 10.0), ("plain", -10.0), ("squared", 10.0), ("boxed", -10.0)):
        idx = rng.choice(len(x), 18, replace=False)
        image = page([x[i] for i in idx], rng, paper=paper, rows=3, heading=False, tilt=tilt)
        total = total + score(label([int(y[i]) for i in idx], 3), read(model, image))
        pen = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) < 120                # the digits' ink, not the rules'
        for d in find_digits(image):
            bx, by, bw, bh = d.box
            over_ink += pen[by:by + bh, bx:bx + bw].mean() > 0.01
            boxes += 1
    print(f"tilted pages: {total}; {over_ink} of {boxes} boxes over a digit's ink")
    assert total.right >= 0.8 * total.true and total.extra <= 8, total
    assert over_ink >= 0.9 * boxes, (over_ink, boxes)


def test_touching_digits_are_split_by_recognition(mnist, model):
    """Numbers written so tight that neighbours touch: with the classifier choosing cuts, far more
    digits are read than with every piece read whole (64 vs 54 of 72 when this was written)."""
    x, y = mnist[1]
    totals = {}
    for split in (True, False):
        rng = np.random.default_rng(4)
        total = Score(0, 0, 0, 0)
        for paper in ("plain", "ruled") * 3:
            idx = rng.choice(len(x), 12, replace=False)
            digits = find_digits(page([x[i] for i in idx], rng, paper=paper, rows=2, touching=True, heading=False))
            if not split:
                for d in digits:
                    d.splits = []
            read, probs = touching.predict(model, [digits])[0]
            total = total + score(label([int(y[i]) for i in idx], 2), reading.label(model.labels, read, probs).text)
        totals[split] = total
    print(f"touching pages: split {totals[True]}, whole {totals[False]}")
    assert totals[True].right >= 0.8 * totals[True].true and totals[True].right >= totals[False].right + 5, totals


def test_digits_the_frame_edge_cuts_are_not_read(mnist, model):
    """A frame that cuts a digit through its middle (a page half out of the picture): the half is
    not read as some other digit (a 4's stem is a 1), the whole digits are."""
    from synthetic.frames import frame
    x, y = mnist[1]
    rng = np.random.default_rng(3)
    total = Score(0, 0, 0, 0)
    for _ in range(12):
        idx = rng.choice(len(x), 5, replace=False)
        image = frame([x[i] for i in idx], rng, digit_height=100)
        boxes = [d.box for d in find_digits(image)]
        assert len(boxes) == 5, boxes
        left, right = boxes[0][0] + boxes[0][2] // 2, boxes[-1][0] + boxes[-1][2] // 2
        total = total + score(" ".join(str(int(y[i])) for i in idx[1:-1]), read(model, image[:, left:right]))
    print(f"frames cut through their first and last digits: {total}")
    assert total.extra <= 1 and total.right >= 0.95 * total.true, total


@pytest.mark.skipif(not (PHOTOS / "MrLokans_digits.jpg").is_file(), reason="shared real photos not beside the repository")
def test_real_squared_sheet_through_a_camera_reads_no_cut_grid_lines(model):
    """Squared paper whose grid the camera's noise breaks into dashes: the dashes the frame's edge
    cuts passed for 1s (1 and 4 extras at 640 and 1280 px when this was written)."""
    from bench.photos import through_camera
    truth = json.loads((PHOTOS / "labels.json").read_text())["MrLokans_digits.jpg"]
    photo = cv2.imread(str(PHOTOS / "MrLokans_digits.jpg"))
    for side in (640, 1280):
        s = score(truth, read(model, through_camera(photo, side)))
        assert s.extra == 0 and s.right >= 16, (side, s)


def test_drawn_boxes_are_told_from_handwritten_digits(mnist):
    """A form's boxes, some with a printed label fused on top, are boxes; MNIST's digits are not
    (6 square 0s and 8s of the 10,000 when this was written)."""
    x, _ = mnist[1]
    digits = 0
    for image in x:
        mask = (image > 80).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        digits += any(drawn_boxes((labels == j).astype(np.uint8), stats[j:j + 1])[0] for j in range(1, n))
    assert digits <= 10, digits
    rng = np.random.default_rng(3)
    boxes = 0
    for _ in range(50):
        w, h = int(rng.integers(12, 120)), int(rng.integers(10, 40))
        label = int(rng.integers(0, h // 3 + 1))        # a printed label above the box, fused with it
        mask = np.zeros((h + label + 4, w + 4), np.uint8)
        cv2.rectangle(mask, (2, label + 2), (w + 1, label + h + 1), 1, int(rng.integers(1, 3)))
        mask[2:label + 2, 2 + w // 3:2 + w // 2] = 1
        mask[label + h // 3:label + h // 2, 2 + w // 4:4 + w // 4] = 1     # and a stroke inside it
        boxes += drawn_boxes(mask, np.array([[2, 2, w, label + h, 0]]))[0]
    assert boxes == 50


@pytest.mark.skipif(not (PHOTOS / "labels.json").is_file(), reason=f"no labelled real photos at {PHOTOS}")
def test_real_forms_far_away_and_blurred_are_measured_by_their_handwriting(model):
    """At a camera's 640 px the NIST form's boxes, fused with their printed labels by the blur, are
    taller than its digits and set the text height (28 px, the digits are about 10): three noise
    draws read 97 of 3 x 130 when this was written, 135 after. The same blur joined each label to
    its box's rule and digits to the box's sides through faint ink, so the rules were too thick to
    be taken out and the digits were read with them: 241 since such gaps join nothing, 246 when
    the next test was written, 302 once only the ink in a rule counts (that test). The score
    card on a table as wide again around it: its cells set the height, 5 of 32 read, 20 after."""
    from bench.photos import on_table, through_camera
    form, truth = labelled_photo("tdaileygithub_hsf.png")
    right = [score(truth, read(model, through_camera(form, 640, seed))).right for seed in range(3)]
    assert sum(right) >= 290, right
    card, truth = labelled_photo("OliverLengwinat_kniffel_1_orig.jpg")
    s = score(truth, read(model, on_table(card, 100)))
    assert s.right >= 12, s


@pytest.mark.skipif(not (PHOTOS / "labels.json").is_file(), reason=f"no labelled real photos at {PHOTOS}")
def test_a_forms_boxes_come_out_though_labels_and_digits_touch_their_rules(model):
    """The NIST form as a 960 px camera frame (at 640 px, the test above): its boxes are hardly
    taller than their digits, and the blur joins each printed label to its box's top rule and the
    digits to the bottom one. Counted with the ink around them, such rules were too thick to be
    rules, the boxes stayed, and the digits in them were read as one piece with them: three noise
    draws read 309 of 3 x 130 when this was written, 366 once only the ink in a rule counts."""
    from bench.photos import through_camera
    form, truth = labelled_photo("tdaileygithub_hsf.png")
    right = [score(truth, read(model, through_camera(form, 960, seed))).right for seed in range(3)]
    assert sum(right) >= 350, right


@pytest.mark.skipif(not (PHOTOS / "labels.json").is_file(), reason=f"no labelled real photos at {PHOTOS}")
def test_a_score_card_through_a_noisy_camera_keeps_its_text_height(model):
    """The score card as a 960 and a 1280 px camera frame: the noise fuses its small print, and a
    table whose tilted rules the page-wide test misses stays one piece, so the working scale
    measured the text up to 1.6 times the first look's and merged digits of two cells. Five noise
    draws at each size read 191 of 10 x 32 when this was written, 218 after."""
    from bench.photos import through_camera
    name = "OliverLengwinat_kniffel_1_orig.jpg"
    card, truth = labelled_photo(name)
    right = [score(truth, read(model, through_camera(card, side, seed))).right for side in (960, 1280) for seed in range(5)]
    assert sum(right) >= 210, right


@pytest.mark.skipif(not (PHOTOS / "labels.json").is_file(), reason=f"no labelled real photos at {PHOTOS}")
def test_digits_in_pen_on_a_faint_dotted_grid_keep_their_strokes(model):
    """The dotted-grid photo: a 1 filling a square and a 9's stem, from rule to rule, were taken out
    as box sides once the page was smaller or askew: 88 of 6 x 17 read when this was written, 102 after.
    Checked where it happened: every view finds all 17 digits, and reads its 1 and both 9s. (Its 4
    is read as a 9 in some views by the model retrained with other writers' digits: the
    classifier's doing, not the grid's, so not counted here.)"""
    from bench.photos import frame, keystone, turn
    name = "MrLokans_digits.jpg"
    grid, truth = labelled_photo(name)
    views = [frame(grid, 640), turn(grid, 6), turn(grid, -6), turn(grid, 10), turn(grid, -10), keystone(grid, 10, "left")]
    digits = digit_string(truth)
    stems = [i for i, d in enumerate(digits) if d in "19"]
    readings = [digit_string(read(model, v)) for v in views]
    assert [len(r) for r in readings] == [len(digits)] * len(views), readings
    assert all(r[i] == digits[i] for r in readings for i in stems), readings


@pytest.mark.skipif(not (PHOTOS / "labels.json").is_file(), reason=f"no labelled real photos at {PHOTOS}")
def test_the_corner_of_a_shadow_at_the_pages_edge_is_not_read_as_a_1(model):
    """A phone's shadow reaches the edge of this photo; turned, or with more table around it, the
    shadow meets a lighter fill there and the closing took its rounded and slanted corners for
    paper: crescents read as 1s, 14 extra digits over these nine views when this was written, 0 after."""
    from bench.photos import on_table, turn
    name = "niraj-dudani_wild_3.jpeg"
    photo, truth = labelled_photo(name)
    views = [turn(photo, a) for a in (3, -3, 6, -6, 10, -10)] + [on_table(photo, t) for t in (25, 50, 100)]
    scores = [score(truth, read(model, v)) for v in views]
    assert sum(s.right for s in scores) >= 88, scores
    assert sum(s.extra for s in scores) <= 3, scores


@pytest.mark.skipif(not (PHOTOS / "labels.json").is_file(), reason=f"no labelled real photos at {PHOTOS}")
def test_two_small_digits_one_above_the_other_at_a_pages_far_end_stay_two(model):
    """Keunyoung-Jung's page of 120 digits seen in perspective, its far (top) edge 20 % shorter: the
    far rows' digits are about half the page's text height, so two of them one above the other fit
    in one digit's height and were merged into one: 94 of 120 right when this was written, 105 after."""
    from bench.photos import keystone
    name = "Keunyoung-Jung_digits.jpg"
    photo, truth = labelled_photo(name)
    s = score(truth, read(model, keystone(photo, 20, "top")))
    assert s.right >= 103 and s.extra <= 12, s


@pytest.mark.skipif(not (PHOTOS / "labels.json").is_file(), reason=f"no labelled real photos at {PHOTOS}")
def test_a_small_sheet_on_a_desk_as_bright_as_paper_is_closed_on_its_own(model):
    """Shaded photos whose edge is paper, a third or half as large on a flat surround of that
    colour: the first look's closing, a quarter of the frame wide, was as wide as the sheet and
    took the brighter surround for paper, so the shaded paper was ink and the sheet one piece, and
    vinay0410_numbers1 seen whole even said light ink. 0 of 31 read when this was written."""
    from bench.photos import on_table
    from edge.ink import to_gray
    from edge.paper import dark_ink
    from edge.preprocess import first_look
    total = Score(0, 0, 0, 0)
    for name, percent in (("niraj-dudani_wild_2.jpeg", 100), ("vinay0410_numbers2.jpg", 100),
                          ("vinay0410_numbers1.jpg", 50), ("vinay0410_numbers1.jpg", 100)):
        photo, truth = labelled_photo(name)
        view = on_table(photo, percent)
        assert dark_ink(first_look(to_gray(view))[0]), (name, percent)
        s = score(truth, read(model, view))
        assert s.right >= 0.8 * s.true, (name, percent, s)
        total = total + s
    assert total.right >= 28 and total.extra <= 1, total


@pytest.mark.skipif(not (PHOTOS / "labels.json").is_file(), reason=f"no labelled real photos at {PHOTOS}")
def test_a_page_on_a_plain_desk_seen_with_a_cameras_noise_is_read(model):
    """niraj-dudani_wild_2 (pencil, shaded paper) with more paper-coloured table around it, which
    has a camera's noise of one grey level: the smooth table set the noise floor under the paper's
    texture and the page became one piece; 0 of 10 read at each distance when this was written."""
    from bench.photos import on_table
    name = "niraj-dudani_wild_2.jpeg"
    photo, truth = labelled_photo(name)
    scores = [score(truth, read(model, on_table(photo, t, noise=1))) for t in (25, 50, 100)]
    assert sum(s.right for s in scores) >= 27 and sum(s.extra for s in scores) <= 1, scores


@pytest.mark.skipif(not (PHOTOS / "labels.json").is_file(), reason=f"no labelled real photos at {PHOTOS}")
def test_smooth_paper_on_a_desk_with_a_cameras_noise_is_told_from_the_desk(model):
    """vinay0410_numbers1's smooth paper is as flat as a desk within 4 grey levels, so the desk
    with a camera's noise of one level (averaged down further on the first look's small copy) was
    no surround: only exactly flat tiles counted next, and a noisy desk has none. Within 2 levels
    the desk is flat and the paper is not. 0 of 12 when this was written."""
    from bench.photos import on_table
    photo, truth = labelled_photo("vinay0410_numbers1.jpg")
    scores = [score(truth, read(model, on_table(photo, t, noise=1))) for t in (25, 50)]
    assert all(s.right >= 5 for s in scores) and sum(s.extra for s in scores) <= 1, scores


@pytest.mark.skipif(not (PHOTOS / "labels.json").is_file(), reason=f"no labelled real photos at {PHOTOS}")
def test_a_sheet_on_a_noisier_desk_keeps_the_surround_the_first_look_saw(model):
    """Shaded photos whose edge is paper, on a paper-coloured desk with a camera's noise of two
    grey levels: the first look's small copy averages the noise away and sees the desk as a flat
    surround, but at the scale the digits are read no tile of it is flat, the desk set the noise
    floor under the paper's texture again and the sheet was one piece. 0 of 26 when this was written."""
    from bench.photos import on_table
    total = Score(0, 0, 0, 0)
    for name, percent in (("niraj-dudani_wild_2.jpeg", 50), ("niraj-dudani_wild_2.jpeg", 100),
                          ("vinay0410_numbers1.jpg", 100)):
        photo, truth = labelled_photo(name)
        s = score(truth, read(model, on_table(photo, percent, noise=2)))
        assert s.right >= 0.8 * s.true, (name, percent, s)
        total = total + s
    assert total.right >= 23 and total.extra <= 1, total


@pytest.mark.skipif(not (PHOTOS / "labels.json").is_file(), reason=f"no labelled real photos at {PHOTOS}")
def test_a_sheet_on_a_desk_with_more_noise_still_has_its_surround(model):
    """A desk with a camera's noise of two and three grey levels, flat within 4 levels in part of
    its tiles only: on the squared sheet (MrLokans) a few flat tiles in a corner passed for the
    surround, and the sheet's edge was read as one piece; around the shaded pencil page the
    desk's tiles that were not flat broke the sheet's outline, no surround was found, and the
    desk set the noise floor. 0 of 17 and 0 of 10 when this was written."""
    from bench.photos import on_table
    total = Score(0, 0, 0, 0)
    for name, percent, noise, least in (("MrLokans_digits.jpg", 100, 2, 13), ("niraj-dudani_wild_2.jpeg", 50, 3, 8)):
        photo, truth = labelled_photo(name)
        s = score(truth, read(model, on_table(photo, percent, noise=noise)))
        assert s.right >= least, (name, s)
        total = total + s
    assert total.extra <= 1, total


def test_blank_sheets_on_a_table_give_no_digits(mnist):
    rng = np.random.default_rng(1)
    for paper in ("ruled", "boxed", "plain"):      # (blank squared paper is a known weakness: README)
        assert find_digits(page([], rng, paper=paper, heading=False)) == [], paper


def test_labels_json_scores_pages_and_draws_boxes(tmp_path, mnist, published_model):
    x, y = mnist[1]
    rng = np.random.default_rng(2)
    labels = {}
    for k, paper in enumerate(("ruled", "boxed")):
        idx = rng.choice(len(x), 6, replace=False)
        cv2.imwrite(str(tmp_path / f"page{k}.jpg"), page([x[i] for i in idx], rng, paper=paper, rows=1))
        labels[f"page{k}.jpg"] = label([int(y[i]) for i in idx], 1)
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    r = subprocess.run([sys.executable, "-m", "edge.classify", str(tmp_path), "--labels", str(tmp_path / "labels.json"),
                        "--report", str(tmp_path / "report"), "--model", str(published_model), "--workers", "1"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "digits right:" in r.stderr and "page0.jpg" in r.stderr and "CER" in r.stderr
    for k in range(2):
        assert cv2.imread(str(tmp_path / "report" / f"page{k}.boxes.jpg")) is not None
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    r = subprocess.run([sys.executable, "-m", "edge.classify", str(tmp_path), "--labels", str(bad), "--model",
                        str(published_model), "--workers", "1"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "expected a JSON object" in r.stderr


@pytest.mark.skipif(not (PHOTOS / "labels.json").is_file(), reason=f"no labelled real photos at {PHOTOS}")
def test_real_photos_floor(published_model):
    """The shared real photos (never copied into the repository): a floor under today's figures."""
    from bench.photos import ours
    from edge.score import totals
    t = totals(ours(PHOTOS, published_model))
    print(f"real photos: {t}")
    assert t["right_rate"] >= 0.96 and t["clean_extra_rate"] <= 0.03 and t["clean_cer"] <= 0.03, t


@pytest.mark.skipif(not (PHOTOS / "labels.json").is_file(), reason=f"no labelled real photos at {PHOTOS}")
def test_real_photos_in_a_640_px_frame(published_model, tmp_path):
    """The same photos as a 640x480 camera sees them: the forms' digits are 6-8 px tall there
    (the reader with a 10 px floor read 68 % of them)."""
    from bench.photos import framed, ours
    from edge.score import totals
    t = totals(ours(framed(PHOTOS, (640,), tmp_path)[640], published_model))
    print(f"real photos at 640 px: {t}")
    assert t["right_rate"] >= 0.85 and t["clean_extra_rate"] <= 0.05, t


@pytest.mark.skipif(not (PHOTOS / "labels.json").is_file(), reason=f"no labelled real photos at {PHOTOS}")
def test_real_photos_in_a_1280_px_frame_plain_and_through_a_camera(published_model, tmp_path):
    """At 1280 px the forms' characters are 12-16 px tall; a first look at 320 px takes their
    boxes and print for characters, so small text is measured again closer (without that these
    read 411 and 369 of 432)."""
    from bench.photos import frame, ours, through_camera, views
    from edge.score import totals
    made = views(PHOTOS, tmp_path, {"plain": lambda image: frame(image, 1280),
                                    "camera": lambda image: through_camera(image, 1280)})
    plain, seen = (totals(ours(made[key], published_model)) for key in ("plain", "camera"))
    print(f"real photos at 1280 px: {plain}; through a camera: {seen}")
    assert plain["right"] >= 415 and seen["right"] >= 390, (plain, seen)
    assert plain["clean_extra_rate"] <= 0.05 and seen["clean_extra_rate"] <= 0.05, (plain, seen)


def test_reading_separates_numbers_that_stand_apart():
    from edge.reading import ReadDigit, text_of
    xs = [0, 30, 60, 150, 180, 210, 300, 330, 360, 390]          # 646 555 0111, digits 24 px wide
    digits = [ReadDigit(v, 0.9, (x, 0, 24, 40), 0) for v, x in zip("6465550111", xs)]
    digits += [ReadDigit(v, 0.9, (x, 100, 24, 40), 1) for v, x in zip("12", (0, 30))]
    assert text_of(digits) == "646 555 0111\n12"
    even = [ReadDigit(v, 0.9, (x, 0, 24, 40), 0) for v, x in zip("1234567890", range(0, 600, 60))]
    assert text_of(even) == "1234567890"                          # evenly spaced: one number
    assert text_of(even, min_confidence=0.95) == "?" * 10


def test_digits_shrink_in_exact_integer_arithmetic():
    # INTER_AREA's float sums round differently on ARM; the crop-to-20x20 shrink is the exact
    # area average, rounded half up, computed here with fractions for comparison.
    from fractions import Fraction
    from edge.preprocess import shrink_exact
    rng = np.random.default_rng(3)
    for h, w, th, tw in ((37, 23, 20, 12), (50, 50, 20, 20), (21, 64, 7, 20)):
        img = rng.integers(0, 256, (h, w)).astype(np.uint8)
        out = shrink_exact(img, (tw, th))
        for j in range(th):
            for i in range(tw):
                total = Fraction(0)
                for y in range(h):
                    wy = max(0, min((j + 1) * h, (y + 1) * th) - max(j * h, y * th))
                    if wy:
                        for x in range(w):
                            wx = max(0, min((i + 1) * w, (x + 1) * tw) - max(i * w, x * tw))
                            total += wy * wx * int(img[y, x])
                mean = total / (h * w)
                assert out[j, i] == int(mean + Fraction(1, 2)), (h, w, j, i)
        assert np.abs(out.astype(int) - cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA)).max() <= 1
