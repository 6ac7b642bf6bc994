import math

import pytest
import torch

from digitrec.tasks.decode import PAD, Decoded, coverage_at, joint_decode, metrics, sequence_correct


def logits_from_probs(p):
    return torch.tensor(p, dtype=torch.float64).log()


def test_joint_decode_picks_the_best_length_with_digit_evidence():
    # max_len 2: length classes 0, 1, 2, >2.  P(L=1)=0.4, P(L=2)=0.45, but position 2 is unsure.
    length = logits_from_probs([[0.05, 0.4, 0.45, 0.10]])
    digits = torch.empty((1, 2, 10), dtype=torch.float64)
    digits[0, 0] = 0.01 / 9
    digits[0, 0, 7] = 0.99
    digits[0, 1] = 0.01 / 8
    digits[0, 1, 3] = 0.5
    digits[0, 1, 4] = 0.49
    out = joint_decode(length, digits.log())
    # L=1: 0.4*0.99 = 0.396 ; L=2: 0.45*0.99*0.5 = 0.2228 ; L=0: 0.05 → L=1 wins
    assert out.length.tolist() == [1]
    assert out.digits.tolist() == [[7, PAD]]
    assert math.isclose(out.confidence.item(), 0.4 * 0.99, rel_tol=1e-6)
    # a surer second digit flips the answer to two digits
    digits[0, 1] = 0.01 / 9
    digits[0, 1, 3] = 0.99
    out = joint_decode(length, digits.log())
    assert out.digits.tolist() == [[7, 3]]
    assert math.isclose(out.confidence.item(), 0.45 * 0.99 * 0.99, rel_tol=1e-6)


def test_joint_decode_with_blank_class_requires_blank_after_length():
    length = torch.zeros(1, 4, dtype=torch.float64)  # uniform over 0,1,2,>2
    digits = torch.full((1, 2, 11), 1e-12, dtype=torch.float64)
    digits[0, 0, 5] = 0.9
    digits[0, 0, 10] = 0.1
    digits[0, 1, 10] = 0.8  # second position is probably blank
    digits[0, 1, 2] = 0.2
    out = joint_decode(length, digits.log())
    # L=1: .25*.9*.8 = .18 ; L=2: .25*.9*.2 = .045 ; L=0: .25*.1*.8 = .02
    assert out.length.tolist() == [1] and out.digits.tolist() == [[5, PAD]]
    assert math.isclose(out.confidence.item(), 0.25 * 0.9 * 0.8, rel_tol=1e-6)


def test_coverage_at_hand_made_examples():
    conf = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5])
    assert coverage_at(conf, torch.tensor([1, 1, 1, 1, 1]).bool()) == 1.0
    # most confident first: 1,1,1,0,1 → accuracies 1,1,1,.75,.8 → 3 of 5 at >= 98%
    assert coverage_at(conf, torch.tensor([1, 1, 1, 0, 1]).bool()) == 0.6
    assert coverage_at(conf, torch.tensor([0, 1, 1, 1, 1]).bool()) == 0.0
    # order follows confidence, not position
    assert coverage_at(torch.tensor([0.1, 0.9]), torch.tensor([0, 1]).bool()) == 0.5
    assert coverage_at(conf, torch.tensor([1, 1, 1, 1, 0]).bool(), accuracy=0.75) == 1.0


def test_metrics_sequence_digit_length():
    decoded = Decoded(
        length=torch.tensor([2, 1, 3]),
        digits=torch.tensor([[1, 2, PAD], [4, PAD, PAD], [7, 8, 9]]),
        confidence=torch.tensor([0.9, 0.8, 0.1]),
    )
    length = torch.tensor([2, 2, 3])
    digits = torch.tensor([[1, 2, PAD], [4, 5, PAD], [7, 8, 0]])
    digit_logits = torch.full((3, 3, 10), -10.0)
    for b, row in enumerate([[1, 2, 0], [4, 6, 0], [7, 8, 9]]):
        for i, d in enumerate(row):
            digit_logits[b, i, d] = 10.0
    assert sequence_correct(decoded, length, digits).tolist() == [True, False, False]
    m = metrics(decoded, digit_logits, length, digits)
    assert m["sequence_accuracy"] == pytest.approx(1 / 3, rel=1e-6)
    assert m["digit_accuracy"] == pytest.approx(
        5 / 7, rel=1e-6
    )  # 1,2 | 4 (5 wrong) | 7,8 (0 wrong)
    assert m["length_accuracy"] == pytest.approx(2 / 3, rel=1e-6)
    assert m["coverage_at_98"] == pytest.approx(1 / 3, rel=1e-6)
