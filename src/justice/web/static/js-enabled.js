// GOV.UK Frontend's bootstrap, served as a file because the Content-Security-Policy allows no
// inline script: styles for JavaScript-enhanced components apply only when scripts run.
document.body.className += ' js-enabled' + ('noModule' in HTMLScriptElement.prototype ? ' govuk-frontend-supported' : '')
