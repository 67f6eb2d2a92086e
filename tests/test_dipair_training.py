"""DiPair's experiment pieces: the pool, whole-query sampling, stage 1 freezing the encoders, amortised cost."""
import pytest
import torch

from pairlib.core import data
from pairlib.dipair.bench import amortised_cost
from pairlib.dipair.experiment import DiPairExperiment, DiPairRecipe, distillation_pool, score_loss, whole_queries


@pytest.fixture(scope="module")
def q2p():
    return data.load_task("squad_q2p")


def test_pool_pairs_each_query_with_its_own_passage_first_and_is_deterministic(q2p):
    pool = distillation_pool(q2p["validation"], queries=5, passages_per_query=4, seed=1)
    assert len(pool) == 20 and pool.query_id.nunique() == 5
    own = q2p["validation"].filter(lambda r: r["label"] == 1).to_pandas().set_index("query_id").passage_id
    for qid, g in pool.groupby("query_id", sort=False):
        assert g.passage_id.iloc[0] == own[qid] and g.passage_id.is_unique
    assert pool.equals(distillation_pool(q2p["validation"], queries=5, passages_per_query=4, seed=1))


def test_whole_queries_keeps_every_candidate_of_a_query(q2p):
    sample = whole_queries(q2p["test"], 30)
    counts = sample.to_pandas().groupby("query_id").size()
    assert (counts == 3).all() and len(sample) == 30


def test_stage_one_on_kept_states_scores_as_the_model_and_trains_only_the_new_layers(tmp_path):
    from pairlib.dipair.experiment import HeadOnKeptStates, kept_states
    from pairlib.dipair.modeling import DiPairModel
    recipe = DiPairRecipe(train_examples=16, eval_examples=9, pool_queries=4, pool_passages=3, query_length=8,
                          passage_length=16, cross_length=24, stage1_epochs=2)
    exp = DiPairExperiment(recipe, "minilm-l6", tmp_path, progress=False)
    model = DiPairModel.from_backbone("minilm-l6", query_tokens=2, passage_tokens=4, head_dim=32, head_heads=2).eval()
    pool = exp.pool()
    states = [*kept_states(model, "query", pool["query_input_ids"], pool["query_attention_mask"]),
              *kept_states(model, "passage", pool["passage_input_ids"], pool["passage_attention_mask"])]
    rows = torch.arange(len(exp.pool_pairs))
    with torch.no_grad():
        torch.testing.assert_close(HeadOnKeptStates(model, *states).eval()(rows, rows),
                                   model(**{k: v for k, v in pool.items() if k != "targets"}))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trained = exp._fit_head("s1", model, head={})
    after = trained.state_dict()
    assert all(torch.equal(before[k], after[k]) == k.startswith("query_encoder.") for k in before
               if not k.endswith("num_batches_tracked"))
    assert exp.records[-1]["steps"] == 2 and exp._fit_head("s1", model, head={}) is model  # finished: reloaded


def test_stage_one_trains_only_the_new_layers(tmp_path):
    recipe = DiPairRecipe(train_examples=16, eval_examples=9, pool_queries=4, pool_passages=2, query_length=8,
                          passage_length=16, cross_length=24, max_steps=1)
    exp = DiPairExperiment(recipe, "minilm-l6", tmp_path, progress=False)
    from pairlib.dipair.modeling import DiPairModel
    model = DiPairModel.from_backbone("minilm-l6", query_tokens=2, passage_tokens=4, head_dim=32, head_heads=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stage1 = exp._fit("s1", "two-stage", model, exp.pool(), score_loss,
                      1, 1e-3, frozen=model.encoder_prefixes)
    after = stage1.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("query_encoder."))
    assert not torch.equal(before["query_projection.weight"], after["query_projection.weight"])
    with pytest.raises(ValueError, match="schedule"):
        exp.distil("x", model, schedule="three-stage")


def test_amortised_cost_follows_the_formula():
    units = {"query": 0.01, "passage": 0.02, "head": 0.0001, "teacher": 0.03}
    row = amortised_cost(units, [10], [100]).iloc[0]
    assert row.cross_encoder_s == pytest.approx(10 * 100 * 0.03)
    assert row.dipair_s == pytest.approx(10 * 0.01 + 100 * 0.02 + 1000 * 0.0001)


def test_each_model_is_named_by_every_setting_that_can_change_it_and_no_other():
    from dataclasses import fields

    from pairlib.dipair.experiment import MODEL_DEPENDENCIES
    recipe = DiPairRecipe()
    every = set(recipe.settings_for("two-stage")) | set(recipe.EVALUATION) | set(recipe.RUN_ONLY)
    assert every | set(recipe.NAMED_WHEN_SET) == {f.name for f in fields(recipe)} | {"data", "schema"}
    assert DiPairRecipe(attention_dropout=0.0).settings_for("teacher")["attention_dropout"] == 0.0
    changed = DiPairRecipe(stage1_epochs=7, student_lr=1e-3, eval_examples=5)
    assert recipe.settings_for("teacher") == changed.settings_for("teacher")
    assert recipe.settings_for("pool") == changed.settings_for("pool")
    assert recipe.settings_for("end-to-end") != changed.settings_for("end-to-end")
    assert DiPairRecipe(stage1_epochs=7).settings_for("end-to-end") == recipe.settings_for("end-to-end")
    assert DiPairRecipe(stage1_epochs=7).settings_for("two-stage") != recipe.settings_for("two-stage")
    assert DiPairRecipe(teacher_lr=1.0).settings_for("pool") != recipe.settings_for("pool")
    assert list(MODEL_DEPENDENCIES) == ["teacher", "pool", "end-to-end", "two-stage"]
    with pytest.raises(ValueError, match="must be one of"):
        recipe.settings_for("student")


def test_every_dipair_setting_names_its_folder():
    """A DiPair setting left out of the folder's name would let a changed model reuse a stale one."""
    import inspect

    from pairlib.dipair.modeling import DIPAIR_SETTINGS, DiPairConfig
    own = set(inspect.signature(DiPairConfig.__init__).parameters) - {"self", "kwargs"}
    assert set(DIPAIR_SETTINGS) == own


@pytest.mark.parametrize("kind", ["dipair", "cosine", "ffnn", "cross"])
def test_new_layer_prefixes_name_exactly_the_layers_the_backbone_lacks(kind):
    """Whatever the backbone supplies keeps the encoders' lr; everything else gets `new_layer_lr`."""
    from pairlib.core.backbone import load_backbone
    from pairlib.dipair.modeling import CrossEncoder, DiPairModel, DualEncoder
    model = {"dipair": lambda: DiPairModel.from_backbone("minilm-l6", query_tokens=2, passage_tokens=4, head_dim=32,
                                                         head_heads=2),
             "cosine": lambda: DualEncoder.from_backbone("minilm-l6", scorer="cosine"),
             "ffnn": lambda: DualEncoder.from_backbone("minilm-l6", scorer="ffnn"),
             "cross": lambda: CrossEncoder.from_backbone("minilm-l6")}[kind]()
    backbone = {n for n, _ in load_backbone("minilm-l6")[0].named_parameters()}
    for name, _ in model.named_parameters():
        from_backbone = name.split(".", 1)[1] in backbone if "." in name else False
        assert name.startswith(model.new_layer_prefixes) != from_backbone, name


def test_students_train_new_layers_at_their_own_lr_and_de_cos_starts_calibrated(tmp_path):
    from pairlib.core.train import _param_groups
    from pairlib.dipair.modeling import DualEncoder
    recipe = DiPairRecipe(train_examples=16, eval_examples=9, pool_queries=4, pool_passages=2, query_length=8,
                          passage_length=16, cross_length=24, max_steps=1, new_layer_lr=1e-2)
    exp = DiPairExperiment(recipe, "minilm-l6", tmp_path, progress=False)
    model = DualEncoder.from_backbone("minilm-l6", scorer="cosine")
    groups = _param_groups(model, 0.01, recipe.student_lr, dict.fromkeys(model.new_layer_prefixes, 1e-2))
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    assert lr_of[id(model.scale)] == lr_of[id(model.bias)] == 1e-2
    assert {lr_of[id(p)] for n, p in model.named_parameters() if n.startswith("query_encoder.")} == {5e-5}
    cosines = exp.pool_cosines(model)
    assert model.scale.item() == 10.0 and cosines.abs().max() <= 1.0 + 1e-5  # set aside, then put back
    model.calibrate(cosines, 3.0 * cosines - 2.0)
    assert model.scale.item() == pytest.approx(3.0, abs=1e-4) and model.bias.item() == pytest.approx(-2.0, abs=1e-4)
    trained = exp.dual("cosine")  # calibrated to the teacher's pool scores, then one step
    assert exp.records[-1]["new_layer_lr"] == 1e-2 and trained.scale.item() != pytest.approx(10.0, abs=0.1)
    # reloaded, a finished model is not calibrated again (that would cost a pass over the pool)
    again = DiPairExperiment(recipe, "minilm-l6", tmp_path, progress=False)
    again.pool_cosines = lambda m: pytest.fail("calibrated a finished model")
    assert torch.equal(again.dual("cosine").scale, trained.scale)
    # without an own rate, the new layers train at the students' lr, and the record says so
    plain = DiPairExperiment(DiPairRecipe(**{**recipe.__dict__, "new_layer_lr": None}), "minilm-l6", tmp_path,
                             progress=False)
    plain.dual("cosine")
    assert plain.records[-1]["new_layer_lr"] == recipe.student_lr


def test_a_new_layer_given_its_own_rate_moves_at_that_rate(tmp_path):
    """Adam's first step moves each parameter by its lr (times the sign of its gradient): DE-Cos's bias (no weight
    decay) by exactly `new_layer_lr`, no encoder weight by more than `student_lr` (plus its weight decay)."""
    from pairlib.dipair.modeling import DualEncoder
    recipe = DiPairRecipe(train_examples=16, eval_examples=9, pool_queries=4, pool_passages=2, query_length=8,
                          passage_length=16, cross_length=24, max_steps=1, warmup_ratio=0.0, new_layer_lr=1e-2,
                          calibrate_cosine=False)
    exp = DiPairExperiment(recipe, "minilm-l6", tmp_path, progress=False)
    model = DualEncoder.from_backbone("minilm-l6", scorer="cosine")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    after = dict(exp._fit_student("de", "end-to-end", model, 1, "end to end", 1e-2).named_parameters())
    assert abs(after["bias"].item() - before["bias"].item()) == pytest.approx(1e-2, rel=1e-3)
    # AdamW: lr * (sign of the gradient + weight decay 0.01 * the weight), element by element
    excess = max(float(((after[n] - p).abs() - 5e-5 * (1 + 0.01 * p.abs())).max())
                 for n, p in before.items() if n.startswith("query_encoder."))
    assert excess <= 2e-7  # float32 rounding of the weights; 300x below the lr itself
    assert any(not torch.equal(after[n], p) for n, p in before.items() if n.startswith("query_encoder."))


def test_evaluation_scores_are_kept_per_weights_and_match_a_fresh_scoring(tmp_path, monkeypatch):
    """A model read back again is not re-scored, and a file is never reused for other weights."""
    from pairlib.dipair import experiment
    from pairlib.dipair.modeling import DualEncoder
    recipe = DiPairRecipe(train_examples=8, eval_examples=6, pool_queries=2, pool_passages=2, query_length=8,
                          passage_length=16, cross_length=24)
    exp = DiPairExperiment(recipe, "minilm-l6", tmp_path, progress=False)
    model = exp.zero_shot_dual()
    fresh = experiment.predict(model, exp.eval_tensors, progress=False)
    first = exp.evaluate(model)
    calls = []
    monkeypatch.setattr(experiment, "predict", lambda *a, **k: calls.append(1) or fresh)
    again = DualEncoder.from_backbone("minilm-l6", scorer="cosine").eval()  # another copy of the same weights
    assert exp.evaluate(again) == first and not calls
    torch.testing.assert_close(exp.eval_scores(again), fresh)
    with torch.no_grad():
        again.query_encoder.embeddings.word_embeddings.weight[0, 0] += 1e-3
    exp.eval_scores(again)
    assert calls == [1]
