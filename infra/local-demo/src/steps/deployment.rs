//! Step 1: the deployment, as the demo made it (`crate::stack` makes it;
//! `crate::lifecycle::create_stack` takes it down again if the making
//! fails or is interrupted).

use crate::stack::Stack;

/// Where AWS is: moto (the endpoint) or your account.
pub fn announce(endpoint: &Option<String>, config: &aws_config::SdkConfig) {
    println!("== the deployment");
    println!(
        "    AWS               {}",
        endpoint
            .as_deref()
            .map(|e| format!("{e} (moto)"))
            .unwrap_or_else(|| format!(
                "your account, region {}",
                config.region().map(|r| r.as_ref()).unwrap_or("?")
            ))
    );
}

/// What was made.
pub fn describe(stack: &Stack) {
    if let Some(template) = &stack.template {
        println!(
            "    stack             {} (template.yaml, translated and created on CloudFormation; account {})",
            template.stack_name, template.account_id
        );
    }
    println!(
        "    bucket            {}{}",
        stack.bucket,
        if stack.owns_bucket {
            " (versioned; uploads/ notifies the upload queue)"
        } else {
            " (yours: its notifications are left alone)"
        }
    );
    println!(
        "    upload queue      {} (dead-letter queue after 5 deliveries)",
        stack.queue_url
    );
    println!("    table             {}", stack.table);
    println!(
        "    secrets           {}/app, {}/invite-key",
        stack.secrets_prefix, stack.secrets_prefix
    );
}
