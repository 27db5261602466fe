"""The settlement service: indexes chain events, reconciles, nets, expires points, runs
fraud checks and anchors each period on chain. Built on the core package `alliance`.
(Issue: "Settlement service"; not implemented yet.)"""
