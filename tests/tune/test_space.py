"""Space files: the shipped ones load; every kind of mistake is rejected naming file and key."""

import pytest

from udatune.augment.ops import OPS
from udatune.augment.policy import parse_policy
from udatune.errors import ConfigError
from udatune.tune.sample import SpaceSampler
from udatune.tune.space import builtin_spaces, load_space, parse_space, resolve_space

GOOD = """
method: mine
searcher: optuna
policy:
  family: autoaugment
  subpolicies: 2
  ops: [Rotate, Color, CutOut]
  magnitude: {low: 2, high: 8}
lambda_u: {low: 0.1, high: 10.0, log: true}
tau: [0.7, 0.9]
temperature: 0.4
tsa: [none, linear]
trial: {uda.loss: ce}
"""


@pytest.fixture
def write(tmp_path):
    def write(text: str, name: str = "space.yaml"):
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


def test_the_shipped_spaces_load_by_name():
    assert {"autoaugment", "randaugment", "trivialaugment"} <= set(builtin_spaces())
    aa, ra, ta = (load_space(n) for n in ("autoaugment", "randaugment", "trivialaugment"))
    assert aa.policy.family == "autoaugment" and aa.policy.subpolicies >= 1 and aa.policy.ops_per_subpolicy == 2
    assert aa.params["lambda_u"].log and aa.params["lambda_u"].low > 0
    # Methods differ in their policy family only: one searcher, the same knobs, for every shipped space.
    assert aa.knobs == ra.knobs == ta.knobs and aa.searcher == "optuna"
    assert set(aa.params) == {"lambda_u", "tau", "temperature", "tsa", "ema_decay", "class_adaptive", "class_balance", "align"}
    assert 0.0 in aa.params["tau"].choices  # thresholding off is a choice
    assert aa.params["class_balance"].choices == (False, True)
    assert ra.policy.n.kind == "int" and ra.policy.m.high <= 10
    # French et al.'s CutMix strong view, a fixed policy with the same searched knobs.
    cm = load_space("cutmix")
    assert cm.knobs == aa.knobs and cm.policy.family == "fixed"
    cutmix = parse_policy(cm.policy.policy)
    assert all(sub[0] == ("CutMix", 1.0, 10) for sub in cutmix.subpolicies)  # every strong view is CutMixed
    assert not any(OPS[op].kind == "geometric" for sub in cutmix.subpolicies for op, _, _ in sub)


def test_a_space_file_by_path(write):
    space = load_space(str(write(GOOD)))
    assert space.method == "mine"
    assert space.policy.ops == ("Rotate", "Color", "CutOut")
    assert space.policy.magnitude.low == 2 and space.policy.magnitude.high == 8
    assert space.params["tau"].choices == (0.7, 0.9)
    assert space.params["temperature"].value == 0.4
    assert space.trial == {"uda.loss": "ce"}


def test_the_method_defaults_to_the_file_stem(write):
    space = load_space(str(write("policy: {family: trivialaugment}\n", name="ta_only.yaml")))
    assert space.method == "ta_only" and space.searcher == "optuna" and space.params == {}


BAD = [
    # (yaml, key the message names, words it contains)
    ("policy: {family: autoaugment, ops: [Rotate, Spin]}", "policy.ops", "unknown op 'Spin'"),
    ("policy: {family: autoaugment}\ntsa: []", "tsa", "empty choice"),
    ("policy: {family: autoaugment, ops: []}", "policy.ops", "empty choice"),
    ("policy: {family: autoaugment}\ntau: []", "tau", "empty choice"),
    ("policy: {family: autoaugment}\ntau: {low: 0.9, high: 0.5}", "tau", "low (0.9) > high (0.5)"),
    ("policy: {family: randaugment, m: {low: 9, high: 2}}", "policy.m", "low (9) > high (2)"),
    ("policy: {family: autoaugment}\nlamda_u: {low: 0.1, high: 1}", "lamda_u", "unknown key"),
    ("policy: {family: autoaugment, subpolicy: 3}", "policy.subpolicy", "unknown key"),
    ("policy: {family: autoaugment}\ntau: {low: 0.5}", "tau", "needs both low and high"),
    ("policy: {family: autoaugment}\nlambda_u: {low: 0.0, high: 1.0, log: true}", "lambda_u", "log-uniform range needs low > 0"),
    ("policy: {family: autoaugment}\ntau: {low: 0.5, high: 1.5}", "tau.high", "outside the allowed range"),
    ("policy: {family: autoaugment, magnitude: {low: 0, high: 30}}", "policy.magnitude.high", "outside the allowed range"),
    ("policy: {family: autoaugment, probability: {low: 0, high: 2}}", "policy.probability.high", "outside"),
    ("policy: {family: autoaugment}\ntsa: [none, cosine]", "tsa", "'cosine' is not one of"),
    ("policy: {family: autoaugment}\ntau: fast", "tau", "must be a number"),
    ("policy: {family: autoaugment, subpolicies: 0}", "policy.subpolicies", "must be ≥ 1"),
    ("policy: {family: autoaugment}\nsearcher: grid", "searcher", "'grid' is not one of"),
    ("policy: {family: fancyaugment}", "policy.family", "'fancyaugment' is not one of"),
    ("policy: {family: randaugment, ops: geometric}", "policy.ops", "not an op set"),
    ("policy: {family: fixed, policy: 'randaugment:2,99'}", "policy.policy", "99"),
    ("policy: {family: autoaugment}\ntrial: {uda.taux: 0.3}", "trial", "uda.taux"),
    ("policy: {family: autoaugment}\nencoder_lr_mult: {low: 0.0, high: 1.0, log: true}", "encoder_lr_mult", "log-uniform range needs low > 0"),
    ("policy: {family: autoaugment}\nencoder_lr_mult: {low: -1, high: 1}", "encoder_lr_mult.low", "outside the allowed range"),
    ("policy: {family: autoaugment}\npaste: [0.0, 1.5]", "paste[1]", "outside the allowed range"),
    ("tau: 0.5", "policy", "missing"),
    ("", "(top level)", "empty"),
    ("- just\n- a list", "(top level)", "must be a mapping"),
]


@pytest.mark.parametrize("text, key, words", BAD, ids=[b[1] + ":" + b[2][:20] for b in BAD])
def test_bad_space_files_are_rejected_naming_file_and_key(write, text, key, words):
    path = write(text)
    with pytest.raises(ConfigError) as err:
        load_space(str(path))
    message = str(err.value)
    assert str(path) in message
    assert f"{key}:" in message or f"{key} " in message or key in message.split(": ")[1]
    assert words in message


def test_invalid_yaml_names_the_file(write):
    path = write("policy: {family: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML") as err:
        load_space(str(path))
    assert str(path) in str(err.value)


def test_unknown_names_and_missing_files_are_clear():
    with pytest.raises(ConfigError, match="not a built-in space"):
        resolve_space("nosuch")
    with pytest.raises(ConfigError, match="no such file"):
        resolve_space("/nonexistent/space.yaml")


def test_a_space_searches_the_labelled_paste(write):
    """``paste`` is a uda.* knob: the sampler sets uda.paste to one of its choices."""
    import optuna

    space = load_space(str(write("policy: {family: trivialaugment}\npaste: [0.0, 0.5]\n")))
    overrides = SpaceSampler(space)(optuna.trial.FixedTrial({"paste": 0.5}))["overrides"]
    assert overrides["uda.paste"] == 0.5


def test_a_space_searches_the_encoder_learning_rate_multiplier(write):
    """``encoder_lr_mult`` is a train.* knob: the sampler sets train.encoder_lr_mult, inside its range."""
    import optuna

    from udatune.config import TrialConfig

    space = load_space(str(write("policy: {family: randaugment}\nencoder_lr_mult: {low: 0.05, high: 0.5, log: true}\n")))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        overrides = SpaceSampler(space)(study.ask())["overrides"]
        assert 0.05 <= overrides["train.encoder_lr_mult"] <= 0.5
        assert TrialConfig().override(overrides).train.encoder_lr_mult == overrides["train.encoder_lr_mult"]


def test_methods_of_one_sweep_must_search_the_same_knobs(write):
    from udatune.tune.space import check_comparable

    narrow = write(GOOD.replace("mine", "narrow"), name="narrow.yaml")
    with pytest.raises(ConfigError) as err:
        check_comparable([load_space("randaugment"), load_space(str(narrow))])
    message = str(err.value)
    assert "randaugment" in message and str(narrow) in message and "policy family" in message and "--knobs default" in message
    check_comparable([load_space(name) for name in builtin_spaces()])


def test_a_policy_only_space_holds_the_uda_knobs_at_the_default():
    from udatune.tune.space import check_comparable

    with_encoder = parse_space({"policy": {"family": "randaugment"}, "tau": [0.0, 0.8], "encoder_lr_mult": {"low": 0.1, "high": 1.0}})
    assert set(with_encoder.policy_only().params) == {"encoder_lr_mult"}  # a training knob, not a UDA one
    space = parse_space({"policy": {"family": "randaugment"}, "lambda_u": {"low": 0.3, "high": 3.0}, "tau": [0.0, 0.8]})
    assert space.policy_only().params == {}
    check_comparable([space.policy_only(), load_space("autoaugment").policy_only()])  # differ before, not after
    with pytest.raises(ConfigError):
        check_comparable([space, load_space("autoaugment")])


@pytest.mark.parametrize("raw, words", [("class_balance: maybe", "true, false"), ("align: []", "true, false")])
def test_flag_knobs_take_true_false_or_both(write, raw, words):
    with pytest.raises(ConfigError) as err:
        load_space(str(write(f"policy: {{family: trivialaugment}}\n{raw}\n")))
    assert words in str(err.value) and raw.split(":")[0] in str(err.value)
