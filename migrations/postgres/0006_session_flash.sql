-- The one-off message a page shows after a form post ("Triggered run ..."), kept with the
-- browser session that made the post, never in the URL, so no link can put its own text in
-- the banner. Set by the post, cleared by the page that shows it. Keep in step with the other
-- dialect.
ALTER TABLE web_session ADD COLUMN flash TEXT;
