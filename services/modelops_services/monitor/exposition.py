"""Prometheus exposition of the monitor state.

Labels come only from {modeldeployment, namespace, track, revision, feature,
method, status, band, bin}; band is one of any, warn, fail, and bin the label of a
prediction bin of the profile (a class or a score interval); feature values are the profile's feature names (fixed at
start), never a raw value or category, so the series count is bounded.
Undefined values (empty window, no labels yet) are exported as NaN.
"""

from __future__ import annotations

from typing import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from .state import LATENCY_BUCKETS, STATUS_CLASSES, MonitorState

BASE = ("modeldeployment", "namespace", "track", "revision")


class MonitorCollector(Collector):
    def __init__(self, state: MonitorState):
        self.state = state

    def collect(self) -> Iterable[Metric]:
        s = self.state
        base = [str(s.config.labels.get(k, "")) for k in BASE]
        r = s.report()

        def gauge(name: str, doc: str, extra: tuple[str, ...] = ()) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=[*BASE, *extra])

        score = gauge("modelops_feature_drift_score", "Drift score per feature and method (psi, js, ks, chi2)", ("feature", "method"))
        pval = gauge("modelops_feature_drift_pvalue", "Unadjusted p-value per feature: chi2 homogeneity and binned KS", ("feature", "method"))
        padj = gauge("modelops_feature_drift_pvalue_adjusted", "Chi-square p-value after Holm/BH correction across features", ("feature",))
        drifted = gauge("modelops_feature_drifted", "1 when the feature drifted: PSI over its band and significant after correction", ("feature",))
        level = gauge("modelops_feature_drift_level", "0 none, 1 warn, 2 alarm (PSI band reached and significant)", ("feature",))
        missing = gauge("modelops_feature_missing_rate", "Share of missing values in the window", ("feature",))
        unseen = gauge("modelops_feature_unseen_rate", "Share of categories never seen in training, or numbers outside the training range", ("feature",))
        for i, name in enumerate(r.names):
            for method, arr in (("psi", r.psi), ("js", r.js), ("ks", r.ks), ("chi2", r.chi2)):
                score.add_metric([*base, name, method], float(arr[i]))
            pval.add_metric([*base, name, "chi2"], float(r.pvalue[i]))
            pval.add_metric([*base, name, "ks"], float(r.ks_pvalue[i]))
            padj.add_metric([*base, name], float(r.pvalue_adjusted[i]))
            drifted.add_metric([*base, name], float(r.drifted[i]))
            level.add_metric([*base, name], float(r.level[i]))
            missing.add_metric([*base, name], float(r.missing_rate[i]))
            unseen.add_metric([*base, name], float(r.unseen_rate[i]))
        yield from (score, pval, padj, drifted, level, missing, unseen)

        ev = r.evidence
        if ev is not None:
            # Sequential evidence: log e-values in nats since the most telling change point.
            evidence = gauge("modelops_feature_drift_evidence",
                             "Log e-value (nats) that the feature left training by at least the PSI band "
                             "(band=warn|fail), or by anything (band=any), maximised over change points",
                             ("feature", "band"))
            lower = gauge("modelops_feature_psi_lower",
                          "Bias-corrected lower confidence bound on PSI since the most telling change point",
                          ("feature",))
            for i, name in enumerate(r.names):
                evidence.add_metric([*base, name, "any"], float(ev.log_evidence[i]))
                evidence.add_metric([*base, name, "warn"], float(ev.band_evidence[0, i]))
                evidence.add_metric([*base, name, "fail"], float(ev.band_evidence[1, i]))
                lower.add_metric([*base, name], float(ev.psi_lower[i]))
            points = gauge("modelops_drift_change_points",
                           "Candidate change points over the horizon (K of the threshold log(K/alpha))")
            points.add_metric(base, float(ev.start_points))
            seq_rows = gauge("modelops_drift_evidence_rows", "Rows over the sequential evidence's horizon")
            seq_rows.add_metric(base, float(ev.rows.max(initial=0)))
            yield from (evidence, lower, points, seq_rows)

        share = gauge("modelops_drifted_feature_share", "Share of input features that drifted (prediction excluded)")
        share.add_metric(base, r.drifted_feature_share)
        yield share
        rows = gauge("modelops_window_samples", "Rows in the sliding drift window")
        rows.add_metric(base, float(r.n))
        yield rows
        labelled = gauge("modelops_window_labelled_samples", "Labelled predictions in the sliding quality window")
        labelled.add_metric(base, float(s.quality.n))
        yield labelled

        h = s.window_health()
        for name, key, doc in (
            ("modelops_window_requests", "requests", "Requests in the sliding window"),
            ("modelops_error_rate", "error_rate", "Share of 5xx responses in the sliding window"),
            ("modelops_client_error_rate", "client_error_rate", "Share of 4xx responses in the sliding window"),
            ("modelops_window_latency_p50_seconds", "latency_p50_seconds", "Median request latency in the window (bin upper edge)"),
            ("modelops_window_latency_p99_seconds", "latency_p99_seconds", "99th percentile request latency in the window (bin upper edge)"),
        ):
            g = gauge(name, doc)
            g.add_metric(base, float(h[key]))
            yield g

        req = CounterMetricFamily("modelops_requests", "Answered prediction requests by status class", labels=[*BASE, "status"])
        for cls in STATUS_CLASSES:
            req.add_metric([*base, cls], s.requests_total[cls])
        yield req

        cum, buckets = 0, []
        for edge, c in zip((*LATENCY_BUCKETS, float("inf")), s.latency_buckets):
            cum += int(c)
            buckets.append(("+Inf" if edge == float("inf") else repr(edge), cum))
        hist = HistogramMetricFamily("modelops_request_latency_seconds", "Request latency measured by the model server", labels=list(BASE))
        hist.add_metric(base, buckets, s.latency_sum)
        yield hist

        for name, value, doc in (
            ("modelops_observed_rows", s.observed_rows, "Rows added to the drift window"),
            ("modelops_malformed_observations", s.malformed, "Observation batches or records that were malformed and ignored"),
            ("modelops_dropped_records", s.dropped, "Records the model server dropped because its queue to the monitor was full or the monitor was unreachable"),
            ("modelops_pending_evicted", s.pending.evicted, "Predictions evicted before their label arrived"),
        ):
            c = CounterMetricFamily(name, doc, labels=list(BASE))
            c.add_metric(base, value)
            yield c

        bins = CounterMetricFamily("modelops_prediction_bin",
                                   "Predictions per bin of the profile's prediction spec (bin: the class, or the "
                                   "score interval)", labels=[*BASE, "feature", "bin"])
        for name, counts in s.prediction_totals().items():
            for label, c in counts.items():
                bins.add_metric([*base, name, label], c)
        yield bins

        fb = CounterMetricFamily("modelops_feedback", "Ground-truth labels received, by status (matched, unmatched, "
                                 "malformed, unverified: an id not signed with the feedback key)",
                                 labels=[*BASE, "status"])
        for k, v in s.feedback.items():
            fb.add_metric([*base, k], v)
        yield fb

        q = gauge("modelops_model_quality", "Online model quality over the window, by method (accuracy, precision, recall, f1, roc_auc; rmse, mae, r2)", ("method",))
        for k, v in s.quality.metrics().items():
            q.add_metric([*base, k], float(v))
        yield q
        # With the standard errors and the rows behind each value, the operator pools a
        # track's pods and tests the candidate against the stable (quality_gate.py).
        qse = gauge("modelops_model_quality_stderr", "Standard error of the online model quality over the window, by method", ("method",))
        for k, v in s.quality.stderr().items():
            qse.add_metric([*base, k], float(v))
        yield qse
        qn = gauge("modelops_model_quality_samples", "Labelled rows behind each quality method (precision: predicted positives; recall: actual positives; roc_auc: rows with a score)", ("method",))
        for k, v in s.quality.samples().items():
            qn.add_metric([*base, k], float(v))
        yield qn


def make_registry(state: MonitorState) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(MonitorCollector(state))
    return reg
