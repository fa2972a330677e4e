//! A real browser for the web UI's tests: Debian's headless Chromium driven
//! over WebDriver (chromedriver), both installed by `scripts/bootstrap.sh`.
//!
//! Each [`Browser`] starts its own chromedriver on a free port and one
//! Chromium session. Screenshots go to `target/ui-screenshots/` (the test
//! artifacts CI keeps).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{elements::Element, Client, ClientBuilder, Locator};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A headless Chromium session and the chromedriver behind it.
pub struct Browser {
    pub client: Client,
    driver: Child,
    test: String,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium; `test` prefixes the
    /// screenshots' names.
    pub async fn start(test: &str) -> Browser {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(binary).exists(),
                "{binary} is missing: run scripts/bootstrap.sh (it installs Debian's chromium and chromium-driver)"
            );
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            l.local_addr().unwrap().port()
        };
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let http = reqwest::Client::new();
        loop {
            if let Ok(r) = http.get(format!("{url}/status")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver never answered on {url}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-dev-shm-usage",
                    "--window-size=1366,900"
                ]
            }),
        );
        // chromedriver listens on loopback over plain HTTP: no TLS.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("start a Chromium session");
        Browser {
            client,
            driver,
            test: test.to_owned(),
        }
    }

    /// Saves a screenshot as `target/ui-screenshots/{test}-{name}.png`.
    pub async fn shot(&self, name: &str) -> PathBuf {
        let dir = crate::root().join("target/ui-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.client.screenshot().await.expect("screenshot");
        let path = dir.join(format!("{}-{name}.png", self.test));
        std::fs::write(&path, png).unwrap();
        path
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// The first element matching `css`, waiting up to 20 s for it.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css:?}: {e}"))
    }

    /// Whether an element matches `css` right now.
    pub async fn has(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    /// The visible text of the page's body.
    pub async fn text(&self) -> String {
        self.find("body").await.text().await.unwrap_or_default()
    }

    /// Waits until the body's text contains `needle`.
    pub async fn wait_text(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let text = self.text().await;
            if text.contains(needle) {
                return text;
            }
            if Instant::now() > deadline {
                let _ = self.shot(&format!("missing-{}", needle.len())).await;
                panic!("the page never showed {needle:?}; it shows:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.client.current_url().await.expect("url").to_string()
    }

    /// Signs in through the sign-in form.
    pub async fn sign_in(&self, base: &str, token: &str) {
        self.goto(&format!("{base}/sign-in")).await;
        self.find("#token").await.send_keys(token).await.unwrap();
        self.find("form.narrow button[type=submit]")
            .await
            .click()
            .await
            .unwrap();
        self.find("header .who .identity").await;
    }

    pub async fn close(mut self) {
        let client = self.client.clone();
        let _ = client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}
