//! The app credentials come from Secrets Manager, and a broken secret gives
//! an error that names the secret but never quotes its value.

use shared::app_secret::{AppSecretError, load_app_credentials};
use shared::aws::AwsClients;
use tiktok_drafts_tests::{local_aws, unique_name};

#[tokio::test]
async fn credentials_load_and_broken_secrets_do_not_leak() {
    let aws = AwsClients::from_config(&local_aws().await);
    let good = unique_name("tiktok-drafts/app");
    aws.secrets
        .create_secret()
        .name(&good)
        .secret_string(r#"{"client_key":"ck-1","client_secret":"cs-very-secret"}"#)
        .send()
        .await
        .unwrap();
    let creds = load_app_credentials(&aws.secrets, &good).await.unwrap();
    assert_eq!(creds.client_key, "ck-1");
    assert_eq!(creds.client_secret.expose(), "cs-very-secret");
    assert!(!format!("{creds:?}").contains("cs-very-secret"));

    let broken = unique_name("tiktok-drafts/app");
    aws.secrets
        .create_secret()
        .name(&broken)
        .secret_string(r#"{"client_key":"ck-1","client_secret":12345678}"#)
        .send()
        .await
        .unwrap();
    let err = load_app_credentials(&aws.secrets, &broken)
        .await
        .unwrap_err();
    assert!(matches!(err, AppSecretError::Malformed { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&broken), "{text}");
    assert!(!text.contains("12345678"), "{text}");

    let missing = load_app_credentials(&aws.secrets, "tiktok-drafts/absent")
        .await
        .unwrap_err();
    assert!(matches!(missing, AppSecretError::Read { .. }), "{missing}");
}
