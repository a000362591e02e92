"""Site self-adaptation (issue 31, in progress): what a site's own tracklets teach the re-id model without labels.
``tracklets`` builds the training signal from the database (Li, Zhu, Gong, "Unsupervised Person Re-identification
by Deep Learning Tracklet Association", ECCV 2018): each tracklet a class within its camera, tracklets that cannot
be one person as negatives, the investigators' verdicts as positives and negatives."""
