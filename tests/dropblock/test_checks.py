"""The public argument checks (dropblock.checks): what they accept, return and refuse, with
"expected X, but got Y" messages, and that the ops and the settings built on them refuse alike."""

from __future__ import annotations

import math

import pytest
import torch

import dropblock as db
import models as M


@pytest.mark.parametrize("check, value, want", [
    (db.check_keep_prob, 1, 1.0), (db.check_keep_prob, 0.25, 0.25), (db.check_keep_prob, 1e-9, 1e-9),
    (db.check_block_size, 7, 7), (db.check_block_size, torch.tensor(3).item(), 3),
    (db.check_gamma_scale, 0, 0.0), (db.check_gamma_scale, 0.25, 0.25),
])
def test_checks_return_the_value_as_the_ops_use_it(check, value, want):
    got = check(value)
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize("check, value, exc, expected", [
    (db.check_keep_prob, 0.0, ValueError, "expected keep_prob in (0, 1], but got 0.0"),
    (db.check_keep_prob, 1.5, ValueError, "expected keep_prob in (0, 1], but got 1.5"),
    (db.check_keep_prob, math.nan, ValueError, "expected keep_prob in (0, 1], but got nan"),
    (db.check_keep_prob, True, TypeError, "expected keep_prob to be a real number, but got bool"),
    (db.check_keep_prob, "0.9", TypeError, "expected keep_prob to be a real number, but got str"),
    (db.check_block_size, 0, ValueError, "expected block_size >= 1, but got 0"),
    (db.check_block_size, 2.5, TypeError, "expected block_size to be an int, but got float"),
    (db.check_block_size, False, TypeError, "expected block_size to be an int, but got bool"),
    (db.check_gamma_scale, -0.5, ValueError, "expected gamma_scale >= 0, but got -0.5"),
    (db.check_gamma_scale, math.nan, ValueError, "expected gamma_scale >= 0, but got nan"),
    (db.check_seed_region, "edge", ValueError, "expected seed_region in ('valid', 'everywhere'), but got 'edge'"),
    (db.check_normalize, "tensor", ValueError, "expected normalize in ('sample', 'batch'), but got 'tensor'"),
    (db.check_gamma_mode, "exact", ValueError, "expected gamma_mode in ('eq1', 'calibrated'), but got 'exact'"),
    (db.check_generator, 0, TypeError, "expected generator to be a torch.Generator, a sequence of them or None, "
                                       "but got int"),
    (db.check_generator, [torch.Generator(), 1], TypeError, "expected a sequence of torch.Generator, but got one "
                                                            "holding int"),
    (db.check_input, [[1.0]], TypeError, "expected x to be a torch.Tensor, but got list"),
    (db.check_input, torch.ones(3, 4, 4), ValueError, "expected a 4-D input (N, C, H, W), but got 3-D"),
    (db.check_input, torch.ones(1, 1, 2, 2, dtype=torch.long), TypeError,
     "expected a floating-point input, but got dtype torch.int64"),
])
def test_checks_refuse_with_expected_but_got(check, value, exc, expected):
    with pytest.raises(exc) as info:
        check(value)
    assert str(info.value).startswith(expected)


def test_checks_accept_every_documented_choice_and_none():
    for region in ("valid", "everywhere"):
        db.check_seed_region(region)
    for normalize in ("sample", "batch"):
        db.check_normalize(normalize)
    for mode in ("eq1", "calibrated"):
        db.check_gamma_mode(mode)
    db.check_generator(None)
    db.check_generator(torch.Generator())
    db.check_generator([torch.Generator(), torch.Generator()], 2)  # one per sample
    with pytest.raises(ValueError, match=r"^expected one generator per sample \(3\), but got 2$"):
        db.check_generator((torch.Generator(), torch.Generator()), 3)
    db.check_input(torch.ones(0, 3, 4, 4))


def test_a_name_in_the_message():
    with pytest.raises(ValueError, match=r"^expected fc_keep_prob in \(0, 1\], but got 0.0$"):
        db.check_keep_prob(0.0, "fc_keep_prob")
    with pytest.raises(ValueError, match="^expected size >= 1"):
        db.check_block_size(-1, "size")


@pytest.mark.parametrize("field, value", [("keep_prob", 0.0), ("block_size", 0), ("seed_region", "edge"),
                                          ("normalize", "tensor"), ("gamma_mode", "exact"), ("keep_prob", True)])
def test_the_op_the_module_and_the_spec_refuse_a_value_with_one_message(field, value):
    """A bad setting is refused where it is written (the spec, the module) as the op refuses it."""
    args = {"keep_prob": 0.9, "block_size": 3, field: value}
    messages = []
    for make in (lambda: db.drop_block2d(torch.ones(1, 1, 4, 4), **args),
                 lambda: db.DropBlock2d(**args),
                 lambda: M.RegularizerSpec(**args)):
        with pytest.raises((TypeError, ValueError)) as info:
            make()
        messages.append((type(info.value), str(info.value)))
    assert messages[0] == messages[1] == messages[2] and messages[0][1].startswith("expected ")
