"""Supervised meta-learning (MAML, first-order MAML, Reptile) on the same inner step as the RL side.

``tasks`` (sinusoid regression), ``image_classes`` (N-way K-shot episodes of an image split), ``omniglot`` and
``miniimagenet`` (their loaders), ``models`` (regressor and conv net), ``meta_learning`` (the meta-learners),
``evaluation`` (adaptation curves, confidence intervals, the pretrained baseline), ``config`` (typed run
configs), ``training`` (the loop the launchers share, with checkpoints and resume), ``few_shot_run`` and
``few_shot_launcher`` (an image benchmark end to end, and its command line), ``few_shot_memory`` (what it needs).
"""
