"""Meta-learners, one file each behind one interface (``base.MetaLearner``): ``maml_trpo`` (MAML with a TRPO
meta-step, Finn et al. 2017), ``maml_ppo`` (MAML with PPO's clipped surrogate and Adam) and ``promp``
(ProMP, Rothfuss et al. 2019). The config key ``algo`` picks one; docs/ALGORITHMS.md compares them."""
