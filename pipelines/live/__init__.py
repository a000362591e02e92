"""Live cameras: ``stream`` (RTSP/HTTP/webcam sources), ``recording`` (rolling MP4 segments), ``watch`` (a site
watched until stopped, on the engine of ``pipelines.ingest.engine``), ``site`` (the site file), ``watchlist``
(persons of interest and their alerts), ``capture`` (bounded recording of streams, then ingest as files)."""
