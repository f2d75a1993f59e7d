// Package sweep runs ablation grids: one base experiment, some config keys swept over lists of values,
// every combination trained with several seeds, and the final metrics gathered into tables and plots.
//
// # The sweep file
//
//	name: mqar_ablation        # the sweep lives in <runs_dir>/<name>/ (default: the file's base name)
//	runs_dir: runs             # default: the base experiment's runs_dir
//	base: quickstart           # an experiment file (relative to this file) or built-in config name,
//	experiment: {...}          # ...or the experiment inline (exactly one of the two)
//	set: [train.steps=100]     # overrides applied to the base first
//	grid:                      # cartesian product, first key varying slowest
//	  model.layers: [[attention, attention], [swa, swa]]
//	  train.learning_rate: [0.003, 0.01]
//	zip:                       # lock-step: the i-th values go together (crossed with the grid)
//	  model.d_model: [32, 64]
//	  model.deltanet.head_dim_k: [16, 32]
//	names:                     # optional short names of values, for ids, tables and plots
//	  model.layers: [attention, swa]
//	seeds: [1, 2, 3]           # default: the base's seed
//	more_seeds:                # extra seeds where one swept key has one value (after all seeds above)
//	  model.d_model=128: [2, 3]
//
// The file is decoded strictly (an unknown key is an error naming its line). Every value is applied with
// configs.ApplyOverride ("key=value" rendered in YAML flow style), so a misspelt key or a wrong-typed
// value stops the sweep before anything runs; a combination that is well typed but invalid (d_model not
// divisible by the heads, say) becomes a failed run and the others go on.
//
// # Runs and resumption
//
// A run's id is built from its settings, "layers=swa,learning_rate=0.01,seed=2" (a key is named by its
// last segment unless two swept keys share it), and it lives in <runs_dir>/<name>/<id>/ as an ordinary
// train run. The order is seed-major: every configuration runs with the first seed before any runs
// with the second, so a sweep cut short still covers the whole grid.
//
// Running a sweep again skips runs whose summary.json reached the target step with a saved config equal
// to the resolved one, resumes unfinished runs from their checkpoints (train.Run does that) and retries
// failed ones. The saved config is compared whole: editing the base after runs exist (even a section
// the runs' layer types do not read) makes them different experiments, which train refuses to resume
// into the old directories, so an edited sweep gets a new name (-name). A failure is written to <id>/error.txt and removed when the run later succeeds. Runs train
// in this process one after another, or (Options.Parallel > 1) as that many child processes, each given
// its resolved experiment as <id>/sweep_run.yaml; their output goes to <id>/train.log. An interrupt
// reaches the child processes as SIGINT, so they save a checkpoint before exiting.
//
// # Results
//
// After every run, <runs_dir>/<name>/ gets results.csv (one row per run: swept values, seed, status,
// eval_accuracy, eval_loss, train_loss, steps, wall_seconds, tokens_per_sec, parameters, state_bytes,
// error), groups.csv (one row per configuration: mean and sample standard deviation, n-1 in the
// denominator, over its finished seeds) and results.md (both tables). At the end it also gets <metric>_vs_<key>.png for eval_accuracy
// and eval_loss against every swept key: mean over seeds with std error bars, one line per setting of
// the other swept keys; and eval_accuracy_vs_state_bytes.png, Zoology's recall-vs-state figure: one line
// per value of the first swept key (the mixer), against StateBytes on a log scale. State bytes are 4
// bytes per element of one row's state as the mixers' StateSpecs give it (conv caches included), full
// attention's KV cache at the run's row length; parameters come from summary.json. All files are
// written atomically (temp file + rename).
package sweep
