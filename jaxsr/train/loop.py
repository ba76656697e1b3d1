"""The generic training loop: ``train_and_evaluate(config, workdir)``.

Init or resume -> jitted, data-parallel, donated train steps -> periodic logging,
evaluation and checkpoints -> a final evaluation against the task's baseline. It knows
only the task contract (``jaxsr.tasks.base``), never a model, a loss or a dataset.

Robustness: the config is validated before anything is written; the workdir is
locked for one writer and a changed config must be asked for (``train.workdir``); a
NaN/inf step leaves the state unchanged (the step guards itself) and the loop stops
at the next log or checkpoint boundary with a clear message, keeping the last good
checkpoint; SIGTERM (TPU preemption, ``kill``) saves a checkpoint at the next step
boundary and raises :class:`~jaxsr.errors.Preempted`; rerunning the same command
resumes exactly, from the newest readable checkpoint.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import inspect
import signal
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from jaxsr import methods
from jaxsr.errors import Preempted, UserError
from jaxsr.train import compile_cache, metric_logs, sharding
from jaxsr.train.checkpoint import Checkpointer
from jaxsr.train.export import load_pretrained
from jaxsr.train.progress import Progress
from jaxsr.train.validate import validate_config
from jaxsr.train.workdir import Workdir, config_dict, flatten

# The jitted programs (init, each phase's step, predict) of recent tasks, by the task's
# class, its config and the mesh. A run repeated with an equal config (resumed after a
# preemption, a notebook cell run again, a sweep's repeat, the tests) calls the same
# jitted functions, so JAX neither traces nor compiles them again; the persistent cache
# spares only the compile, and loading from it takes time too. A task is a pure
# function of its config (the contract in jaxsr.tasks.base): equal keys, equal programs.
_PROGRAMS: collections.OrderedDict = collections.OrderedDict()
_PROGRAMS_KEPT = 16


def _program(task, mesh, what, make):
    """``make()``, or what it made for an equal ``(task class, config, mesh, what)``;
    ``what`` ``None`` (a function not known by name) is never shared."""
    if what is None:
        return make()
    key = (
        type(task),
        task.config.to_json_best_effort(sort_keys=True),
        mesh.axis_names,
        tuple(d.id for d in mesh.devices.flat),
        what,
    )
    if key not in _PROGRAMS:
        _PROGRAMS[key] = make()
        while len(_PROGRAMS) > _PROGRAMS_KEPT:
            _PROGRAMS.popitem(last=False)
    _PROGRAMS.move_to_end(key)
    return _PROGRAMS[key]


def _method_name(fn):
    """A task method (or a ``functools.partial`` of one, DASR's stages) by name and
    bound arguments; ``None`` for anything else."""
    if isinstance(fn, functools.partial):
        inner = _method_name(fn.func)
        if inner is None or fn.args:
            return None
        return (inner, tuple(sorted(fn.keywords.items())))
    return fn.__func__.__qualname__ if inspect.ismethod(fn) else None


def compile_train_step(task, mesh, step_fn=None):
    """``jit(task.train_step)``: state replicated and donated, batch sharded, constants
    (frozen networks such as VGG) replicated and passed as arguments, not baked into HLO.
    ``step_fn`` picks another step of the task (one of ``task.phases()``)."""
    step_fn = step_fn or task.train_step
    rep = sharding.replicated(mesh)
    return _program(
        task,
        mesh,
        _method_name(step_fn),
        lambda: jax.jit(
            step_fn,
            in_shardings=(rep, sharding.batch_sharded(mesh), rep),
            out_shardings=(rep, rep),
            donate_argnums=(0,),
        ),
    )


def init_state(task, config, mesh):
    rep = sharding.replicated(mesh)
    init = _program(task, mesh, "init", lambda: jax.jit(task.init, out_shardings=rep))
    return init(jax.random.key(config.seed))


def jit_predict(task, mesh):
    """``jit(task.predict)``, shared like the steps."""
    return _program(task, mesh, "predict", lambda: jax.jit(task.predict))


class _Preemption:
    """Turns SIGTERM into a flag the loop checks at step boundaries."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread (e.g. inside a notebook worker)
            self._previous = None
        return self

    def _handle(self, signum, frame):
        logging.warning("SIGTERM received: saving a checkpoint at the next step boundary.")
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def _mean_metrics(history: list[dict]) -> dict:
    host = jax.device_get(history)
    return {k: float(np.mean([h[k] for h in host])) for k in host[0]}


def _check_finite(history: list[dict], step: int, last_ckpt, workdir: str, lr: float) -> None:
    bad = jax.device_get([h["nonfinite"] for h in history])
    if any(b > 0 for b in bad):
        first = step - len(bad) + 1 + next(i for i, b in enumerate(bad) if b > 0)
        kept = f"the last good checkpoint (step {last_ckpt})" if last_ckpt else "no checkpoint"
        raise UserError(
            f"Training diverged: the loss or gradients became NaN/inf at step {first} "
            f"(lr {lr:.3g}); {kept} is kept in {workdir}. Lower the learning rate "
            "(--config.optim.lr) or check the data, then rerun to resume."
        )


def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str,
    *,
    task=None,
    allow_config_change: bool = False,
):
    """Train ``config`` in ``workdir`` (resuming if it holds a checkpoint); returns the state.

    ``task``: the :class:`~jaxsr.tasks.base.Task` to train (default: the class the
    registry names for ``config.task``, built from ``config``). ``allow_config_change``
    accepts a config that differs from the workdir's (the change is recorded); without
    it such a rerun stops and lists the differences. Raises
    :class:`~jaxsr.errors.Preempted` after saving when stopped by SIGTERM.
    """
    validate_config(config)
    sharding.maybe_initialize_distributed(config)
    compile_cache.enable()
    mesh = sharding.make_mesh()
    sharding.check_batch_size(config.data.batch_size, mesh)
    compiles = compile_cache.CompileCounter()
    # The task opens its training and evaluation data (every file is checked) before
    # the workdir is made, so a wrong dataset path leaves nothing behind.
    task = task or methods.task_class(config.task)(config)
    train_iter = iter(task.train_data(jax.process_index(), jax.process_count()))
    consts = sharding.put_replicated(task.constants(), mesh)
    # Every process evaluates on its own first device (see sharding.local_copy); only
    # process 0's writer records the results.
    evaluator = task.evaluator(sharding.local_copy(consts))
    with Workdir(workdir, primary=jax.process_index() == 0) as wd:
        checkpointer = Checkpointer(workdir, keep=config.keep_checkpoints)
        fresh = checkpointer.latest_step() is None  # nothing to resume: any config will do
        changes = wd.check_config(config, allow_change=allow_config_change or fresh)
        run = _Run(task, train_iter, consts, evaluator, mesh, compiles)
        try:
            return _train(config, workdir, wd, checkpointer, changes, run)
        finally:
            checkpointer.close()


@dataclasses.dataclass
class _Run:
    """What a run opened before its workdir: the task, its data and constants."""

    task: object
    train_iter: object
    consts: dict
    evaluator: object
    mesh: object
    compiles: compile_cache.CompileCounter


def _train(config, workdir: str, wd: Workdir, checkpointer: Checkpointer, changes, run: _Run):
    task, train_iter, consts, evaluator = run.task, run.train_iter, run.consts, run.evaluator
    mesh, compiles = run.mesh, run.compiles
    state = init_state(task, config, mesh)
    restored = checkpointer.restore(state, train_iter)
    if restored is not None:
        state = restored
    elif config.get("init_from"):  # e.g. ESRGAN's G from the PSNR stage
        state = task.init_from(state, *load_pretrained(config.init_from))
        logging.info("Initialised from %s.", config.init_from)
    start = int(jax.device_get(state.step))
    if restored is not None:
        logging.info("Resumed from the checkpoint at step %d in %s.", start, workdir)
    last_ckpt = start or None
    # Only now: a config that cannot resume this workdir must not overwrite the one
    # that describes it.
    wd.save_config(config, step=start, resumed=restored is not None, changes=changes)
    wd.note_devices(mesh.size, resumed=restored is not None)
    if start == 0:
        wd.save_parameters(state.params)

    writer = metric_logs.create_writer(workdir, just_logging=jax.process_index() > 0)
    if start == 0:
        writer.write_hparams(
            {
                k: v
                for k, v in flatten(config_dict(config)).items()
                if isinstance(v, int | float | str)
            }
        )
    # A task with stages (DASR) has one step function per stage, compiled when reached.
    phases = task.phases()
    num_steps = task.num_train_steps()
    compiled: dict[int, object] = {}

    def step_fn(state, batch, consts):
        phase = max(i for i, (first, _) in enumerate(phases) if first <= step)
        if phase not in compiled:
            compiled[phase] = compile_train_step(task, mesh, phases[phase][1])
        return compiled[phase](state, batch, consts)

    predict = jit_predict(task, mesh)
    progress = Progress([first for first, _ in phases], num_steps)

    def run_eval(step: int) -> dict:
        variables = sharding.local_copy(task.eval_variables(state))
        results = evaluator.run(lambda lq: predict(variables, jax.tree.map(jnp.asarray, lq)))
        scalars = evaluator.scalars(results)
        writer.write_scalars(step, scalars)
        if step < num_steps:  # the last one is the closing table
            headline = {k[len("eval/") :]: v for k, v in scalars.items() if k.count("/") == 1}
            logging.info(
                "Eval at step %d: %s", step, ", ".join(f"{k} {v:.4g}" for k, v in headline.items())
            )
        images = evaluator.images(results)
        if images:
            writer.write_images(step, images)
        return results

    history: list[dict] = []
    step = start
    t0 = time.time()
    try:
        with _Preemption() as preemption:
            while step < num_steps:
                batch = sharding.put_batch(next(train_iter), mesh)
                state, metrics = step_fn(state, batch, consts)
                step += 1
                history.append(metrics)
                is_last = step == num_steps
                stop = preemption.requested or checkpointer.manager.reached_preemption(step)
                if step % config.log_every == 0 or is_last or stop:
                    lr = float(jax.device_get(history[-1]["lr"]))
                    _check_finite(history, step, last_ckpt, workdir, lr)
                    means = _mean_metrics(history)
                    means.pop("nonfinite")
                    progress.update(step)
                    scalars = {f"train/{k}": v for k, v in means.items()}
                    rate = progress.stage_rate(progress.stage(step))
                    if rate is not None:
                        scalars["train/steps_per_sec"] = rate
                    writer.write_scalars(step, scalars)
                    logging.info("%s", progress.line(step, means))
                    history = []
                if config.eval_every and step % config.eval_every == 0 and not is_last:
                    run_eval(step)
                if step % config.checkpoint_every == 0 or is_last or stop:
                    if history:
                        lr = float(jax.device_get(history[-1]["lr"]))
                        _check_finite(history, step, last_ckpt, workdir, lr)
                    wd.check_lock()  # a run that lost its workdir must not write to it
                    checkpointer.save(step, state, train_iter)
                    writer.flush()
                    last_ckpt = step
                if stop:
                    raise Preempted(step)
    finally:
        # Whatever ends the loop (done, preempted, diverged), finish writing the
        # checkpoint in flight so the newest complete one is on disk.
        checkpointer.wait()
        writer.flush()
    trained = step - start
    if trained:
        logging.info("Trained %d steps in %.1f s.", trained, time.time() - t0)
    results = run_eval(step)
    writer.close()
    logging.info("Compilation: %s.", compiles.summary())
    if jax.process_index() == 0:
        print(evaluator.report(results, step))
    return state
