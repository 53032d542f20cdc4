"""Supervised meta-learning (MAML, first-order MAML, Reptile) on the same inner step as the RL side.

``tasks`` (sinusoid regression), ``omniglot`` (few-shot classification from the Omniglot directory
format), ``models`` (regressor and conv net), ``meta_learning`` (the meta-learners), ``evaluation``
(adaptation curves, confidence intervals, the pretrained baseline), ``config`` (typed run configs),
``training`` (the loop the launchers share).
"""
